import { useQuery } from "@tanstack/react-query";
import { allPages, api, call } from "./client";

export const keys = {
  me: ["me"] as const,
  profiles: ["profiles"] as const,
  profile: (slug: string) => ["profiles", slug] as const,
  servers: ["servers"] as const,
  server: (name: string) => ["servers", name] as const,
  credentials: ["credentials"] as const,
  plugins: ["plugins"] as const,
  plugin: (name: string) => ["plugins", name] as const,
  metrics: (name: string) => ["plugins", name, "metrics"] as const,
  webhooks: ["webhooks"] as const,
  users: ["users"] as const,
  audit: ["audit"] as const,
  series: ["series"] as const,
  oauthApps: ["oauth-apps"] as const,
  oauthRedirectUri: ["oauth-redirect-uri"] as const,
  connections: (owner: "me" | "operator") => ["connections", owner] as const,
};

export const meQuery = {
  queryKey: keys.me,
  queryFn: () => call(api.GET("/api/me")),
  meta: { suppressErrorToast: true },
  staleTime: 60_000,
};

export const useMe = () => useQuery(meQuery);

export const useIsAdmin = () => useMe().data?.role === "admin";

export const profilesQuery = {
  queryKey: keys.profiles,
  queryFn: () => allPages((after) => call(api.GET("/api/profiles", { params: { query: { after, limit: 500 } } }))),
};

export const serversQuery = {
  queryKey: keys.servers,
  queryFn: () => allPages((after) => call(api.GET("/api/servers", { params: { query: { after, limit: 500 } } }))),
};

export const useProfiles = () => useQuery(profilesQuery);

export const useServers = (poll = false) =>
  useQuery({
    ...serversQuery,
    refetchInterval: poll ? 5000 : false,
    refetchIntervalInBackground: false,
  });

export const usePlugins = (enabled = true) =>
  useQuery({
    queryKey: keys.plugins,
    queryFn: () => allPages((after) => call(api.GET("/api/plugins", { params: { query: { after, limit: 500 } } }))),
    enabled,
  });

export const useMetrics = (name: string, enabled = true) =>
  useQuery({
    queryKey: keys.metrics(name),
    queryFn: () => call(api.GET("/api/plugins/{name}/metrics", { params: { path: { name } } })),
    enabled,
  });
