import { useTranslation } from "react-i18next";
import { Link } from "wouter";

export function NotFound() {
  const { t } = useTranslation();
  return (
    <div className="card">
      <h1>{t("notFound.title")}</h1>
      <p>{t("notFound.body")}</p>
      <Link href="/">{t("notFound.home")}</Link>
    </div>
  );
}
