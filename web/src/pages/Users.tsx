import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useLocation } from "wouter";
import { allPages, api, call, type User } from "../api/client";
import { keys, useIsAdmin, useMe } from "../api/queries";
import { AdminOnly, ErrorNote, Loading, PageHead } from "../components/common";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { toast } from "../components/toasts";
import { fmtTime } from "../format";

export function Users() {
  const { t } = useTranslation();
  const isAdmin = useIsAdmin();
  const me = useMe();
  const qc = useQueryClient();
  const list = useQuery({
    queryKey: keys.users,
    queryFn: () => allPages((after) => call(api.GET("/api/users", { params: { query: { after, limit: 500 } } }))),
    enabled: isAdmin,
  });
  const [toDelete, setToDelete] = useState<User | null>(null);
  const [, navigate] = useLocation();
  const viewAs = useMutation({
    mutationFn: (u: User) => call(api.POST("/api/users/{id}/view-as", { params: { path: { id: String(u.id) } }, body: {} })),
    onSuccess: () => {
      // From now on every page is the other user's: nothing of the admin's view may linger.
      qc.clear();
      navigate("/");
    },
  });
  const setRole = useMutation({
    mutationFn: ({ id, role }: { id: number; role: "admin" | "user" }) => call(api.PATCH("/api/users/{id}", { params: { path: { id: String(id) } }, body: { role } })),
    onSuccess: (u) => {
      void qc.invalidateQueries({ queryKey: keys.users });
      toast(t("users.roleChanged", { name: u.name || u.subject, role: t(`role.${u.role}`) }), "ok");
    },
  });
  const del = useMutation({
    mutationFn: (u: User) => call(api.DELETE("/api/users/{id}", { params: { path: { id: String(u.id) } } })),
    meta: { suppressErrorToast: true },
    onSuccess: () => {
      setToDelete(null);
      void qc.invalidateQueries({ queryKey: keys.users });
      toast(t("users.deleted"), "ok");
    },
  });
  if (!isAdmin) return <AdminOnly />;
  return (
    <>
      <PageHead title={t("users.title")} subtitle={t("users.subtitle")} />
      <div className="card">
        {list.isPending && <Loading />}
        {list.isError && <ErrorNote error={list.error} />}
        {list.data && (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("account.name")}</th>
                  <th scope="col">{t("account.identity")}</th>
                  <th scope="col">{t("account.role")}</th>
                  <th scope="col">{t("account.access")}</th>
                  <th scope="col">{t("account.lastLogin")}</th>
                  <th scope="col"><span className="visually-hidden">{t("common.actions")}</span></th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((u) => {
                  const self = u.id === me.data?.id;
                  const label = u.name || u.email || u.subject;
                  return (
                    <tr key={u.id}>
                      <td>
                        {label} {self && <span className="badge accent">{t("users.you")}</span>}
                        {u.email && u.email !== label && <div className="muted small">{u.email}</div>}
                      </td>
                      <td className="mono small">{u.issuer}<br />{u.subject}</td>
                      <td>
                        <select
                          aria-label={t("users.roleOf", { name: label })}
                          value={u.role}
                          disabled={self || setRole.isPending}
                          title={self ? t("users.notSelf") : undefined}
                          onChange={(e) => setRole.mutate({ id: u.id, role: e.target.value as "admin" | "user" })}
                        >
                          <option value="admin">{t("role.admin")}</option>
                          <option value="user">{t("role.user")}</option>
                        </select>
                      </td>
                      <td className="small">{u.profiles === "all" ? t("account.allProfiles") : u.profiles.join(", ") || "—"}</td>
                      <td className="small">{fmtTime(u.last_login_at)}</td>
                      <td>
                        <div className="row">
                          {!self && (
                            <button type="button" className="small" disabled={viewAs.isPending} onClick={() => viewAs.mutate(u)} aria-label={t("viewAs.start", { name: label })}>
                              {t("viewAs.button")}
                            </button>
                          )}
                          <button type="button" className="small" disabled={self} title={self ? t("users.notSelf") : undefined} onClick={() => setToDelete(u)} aria-label={t("users.deleteNamed", { name: label })}>
                            {t("common.delete")}
                          </button>
                        </div>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        <p className="muted small" style={{ marginTop: "0.5rem" }}>{t("users.roleNote")}</p>
      </div>
      <ConfirmDialog
        open={!!toDelete}
        title={t("users.deleteTitle", { name: toDelete ? toDelete.name || toDelete.subject : "" })}
        body={t("users.deleteBody")}
        confirmLabel={t("common.delete")}
        busy={del.isPending}
        error={del.error}
        onConfirm={() => toDelete && del.mutate(toDelete)}
        onClose={() => { setToDelete(null); del.reset(); }}
      />
    </>
  );
}
