// Compatibility check: msal-node + microsoft-graph-client against the m365sync simulator.
//
//   mkdir /tmp/n && cd /tmp/n && npm i @azure/msal-node @microsoft/microsoft-graph-client
//   NODE_PATH=/tmp/n/node_modules node tests/compat/msal_node.mjs target/debug/examples/sim
//
// The script starts the simulator with --tls, then re-runs itself with NODE_EXTRA_CA_CERTS set to the
// simulator's CA (Node reads that variable only at start-up). Prints `ok: ...` per check, `ALL OK` at the end.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH || process.cwd(), "x.js"));

function check(cond, what) {
  if (!cond) throw new Error("FAILED: " + what);
  console.log("ok:", what);
}

async function parent() {
  const bin = process.argv[2] || process.env.SIM_BIN || "target/debug/m365sync";
  const sim = spawn(bin, ["sim", "--tls", "--users", "1500", "--device-code-interval", "1"], { stdio: ["ignore", "pipe", "inherit"] });
  const info = { apps: [] };
  const rl = createInterface({ input: sim.stdout });
  for await (const line of rl) {
    const [word, ...rest] = line.trim().split(" ");
    if (word === "listening") info.base = rest[1];
    if (word === "ca-cert") info.ca = rest[0];
    if (word === "tenant") info.tenant = rest[0];
    if (word === "client") info.client = rest[0];
    if (word === "app") { info.apps.push(rest); break; }
  }
  const child = spawn(process.execPath, [process.argv[1]], {
    stdio: "inherit",
    env: { ...process.env, NODE_EXTRA_CA_CERTS: info.ca, SIM_INFO: JSON.stringify(info), NO_PROXY: "127.0.0.1,localhost",
      HTTPS_PROXY: "", HTTP_PROXY: "", https_proxy: "", http_proxy: "" },
  });
  const code = await new Promise((r) => child.on("exit", r));
  sim.kill();
  process.exit(code);
}

async function approveSoon(base, userCode, action = "approve", delay = 1200) {
  await new Promise((r) => setTimeout(r, delay));
  const r = await fetch(base + "/devicelogin", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ user_code: userCode, action }),
  });
  console.log("  /devicelogin ->", r.status);
}

async function child() {
  const info = JSON.parse(process.env.SIM_INFO);
  const msal = require("@azure/msal-node");
  const { Client } = require("@microsoft/microsoft-graph-client");
  const host = new URL(info.base).host;
  const authority = `${info.base}/${info.tenant}`;

  const pca = new msal.PublicClientApplication({ auth: { clientId: info.client, authority, knownAuthorities: [host] } });
  let approval;
  const result = await pca.acquireTokenByDeviceCode({
    scopes: ["User.Read.All"],
    deviceCodeCallback: (r) => { approval = approveSoon(info.base, r.userCode); },
  });
  await approval;
  check(result && result.accessToken, "msal-node device code flow");
  check(result.idTokenClaims.aud === info.client, "id_token aud = client id");
  const refreshed = await pca.acquireTokenSilent({ account: result.account, scopes: ["User.Read.All"], forceRefresh: true });
  check(refreshed.accessToken && refreshed.accessToken !== result.accessToken, "msal-node silent refresh");

  const [cid, secret] = info.apps[0];
  const cca = new msal.ConfidentialClientApplication({ auth: { clientId: cid, clientSecret: secret, authority, knownAuthorities: [host] } });
  const app = await cca.acquireTokenByClientCredential({ scopes: ["https://graph.microsoft.com/.default"] });
  check(app.accessToken, "msal-node client credentials");

  const client = Client.init({
    authProvider: (done) => done(null, app.accessToken),
    baseUrl: info.base + "/",
    customHosts: new Set([new URL(info.base).hostname]),
  });
  let page = await client.api("/users").version("v1.0").select("id,userPrincipalName").top(999).get();
  const ids = new Set();
  let pages = 1;
  for (;;) {
    page.value.forEach((u) => ids.add(u.id));
    if (!page["@odata.nextLink"]) break;
    page = await client.api(page["@odata.nextLink"]).get();
    pages++;
  }
  check(ids.size === 1500 && pages === 2, `graph-js paged ${ids.size} users in ${pages} pages`);
  try {
    await client.api("/users?$top=1000").version("v1.0").get();
    check(false, "400 expected");
  } catch (e) {
    check(e.statusCode === 400 && e.code === "Request_UnsupportedQuery", "graph-js surfaces Request_UnsupportedQuery");
  }
  const delegated = Client.init({
    authProvider: (done) => done(null, refreshed.accessToken),
    baseUrl: info.base + "/",
    customHosts: new Set([new URL(info.base).hostname]),
  });
  const me = await delegated.api("/me").version("v1.0").get();
  check(me.userPrincipalName.startsWith("admin@"), "graph-js /me with the delegated token");
  console.log("ALL OK");
}

(process.env.SIM_INFO ? child() : parent()).catch((e) => { console.error(e); process.exit(1); });
