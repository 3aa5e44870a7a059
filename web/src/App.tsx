import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { lazy, Suspense } from "react";
import { Route, Switch } from "wouter";
import { navigate } from "wouter/use-browser-location";
import { ApiError } from "./api/client";
import { meQuery, profilesQuery, serversQuery } from "./api/queries";
import { errorText, Loading } from "./components/common";
import { toast, Toasts } from "./components/toasts";
import { Shell } from "./Shell";
import { Account } from "./pages/Account";
import { Audit } from "./pages/Audit";
import { Catalog, CatalogEntry } from "./pages/Catalog";
import { Connections } from "./pages/Connections";
import { Credentials } from "./pages/Credentials";
import { Login } from "./pages/Login";
import { NotFound } from "./pages/NotFound";
import { Overview } from "./pages/Overview";
import { ProfileDetail } from "./pages/ProfileDetail";
import { Profiles } from "./pages/Profiles";
import { Plugins } from "./pages/Plugins";
import { ServerDetail } from "./pages/ServerDetail";
import { ServerNew } from "./pages/ServerNew";
import { Servers } from "./pages/Servers";
import { Users } from "./pages/Users";
import { Webhooks } from "./pages/Webhooks";

// The plugin page carries the JSON-Schema validator and the generated form: loaded on demand.
const PluginDetail = lazy(() => import("./pages/PluginDetail"));

declare module "@tanstack/react-query" {
  interface Register {
    queryMeta: { suppressErrorToast?: boolean };
    mutationMeta: { suppressErrorToast?: boolean };
  }
}

/** A 401 anywhere means the session is gone: go to the login page and come back here afterwards. */
function handleError(error: unknown, suppress: boolean | undefined) {
  if (error instanceof ApiError && error.status === 401) {
    const path = window.location.pathname + window.location.search;
    if (!window.location.pathname.startsWith("/login")) {
      queryClient.clear();
      navigate("/login?return_to=" + encodeURIComponent(path), { replace: true });
    }
    return;
  }
  if (!suppress) toast(errorText(error), "error");
}

export const queryClient: QueryClient = new QueryClient({
  queryCache: new QueryCache({ onError: (e, q) => handleError(e, q.meta?.suppressErrorToast) }),
  mutationCache: new MutationCache({ onError: (e, _v, _c, m) => handleError(e, m.meta?.suppressErrorToast) }),
  defaultOptions: {
    queries: { staleTime: 10_000, retry: false, refetchOnWindowFocus: true },
    mutations: { retry: false },
  },
});

// The overview's counts are asked for while the session is checked, not after: the page that opens most often
// shows its data one round trip sooner. Only what every user may read (admins' extras wait for the session).
if (window.location.pathname === "/") {
  void queryClient.prefetchQuery(meQuery);
  void queryClient.prefetchQuery(profilesQuery);
  void queryClient.prefetchQuery(serversQuery);
}

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <Switch>
        <Route path="/login" component={Login} />
        <Route>
          <Shell>
            <Suspense fallback={<Loading />}>
              <Switch>
                <Route path="/" component={Overview} />
                <Route path="/profiles" component={Profiles} />
                <Route path="/profiles/:slug" component={ProfileDetail} />
                <Route path="/catalog" component={Catalog} />
                <Route path="/catalog/:name" component={CatalogEntry} />
                <Route path="/servers" component={Servers} />
                <Route path="/servers/new" component={ServerNew} />
                <Route path="/servers/:name" component={ServerDetail} />
                <Route path="/credentials" component={Credentials} />
                <Route path="/connections" component={Connections} />
                <Route path="/plugins" component={Plugins} />
                <Route path="/plugins/:name" component={PluginDetail} />
                <Route path="/webhooks" component={Webhooks} />
                <Route path="/audit" component={Audit} />
                <Route path="/users" component={Users} />
                <Route path="/account" component={Account} />
                <Route component={NotFound} />
              </Switch>
            </Suspense>
          </Shell>
        </Route>
      </Switch>
      <Toasts />
    </QueryClientProvider>
  );
}
