#!/usr/bin/env python3
"""Compatibility check: Microsoft's own libraries against the m365sync simulator.

Runs MSAL Python (device code flow approved through the /devicelogin form, silent refresh,
client credentials, instance discovery), azure-identity (ClientSecretCredential,
DeviceCodeCredential) and msgraph-sdk (users paged with $select/$top, domains) against
`cargo run --example sim -- --tls`.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install msal azure-identity msgraph-sdk
    cargo build --example sim
    /tmp/venv/bin/python tests/compat/msal_devicecode.py [path/to/sim-binary]

The binary defaults to $SIM_BIN, else $CARGO_TARGET_DIR/debug/examples/sim, else target/debug/examples/sim.
Exit status 0 = every check passed.
"""
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time


def start_sim():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    binary = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get("SIM_BIN") or os.path.join(
        target, "debug", "m365sync")
    proc = subprocess.Popen([binary, "sim", "--tls", "--users", "2500", "--device-code-interval", "1"],
                            stdout=subprocess.PIPE, text=True)
    info = {"apps": []}
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("simulator exited early")
        word, _, rest = line.strip().partition(" ")
        if word == "listening":
            info["base"] = rest.split(" ", 1)[1]
        elif word == "ca-cert":
            info["ca"] = rest
        elif word == "tenant":
            info["tenant"] = rest
        elif word == "client":
            info["client"] = rest
        elif word == "app":
            info["apps"].append(rest.split(" ", 1))
            break  # the last line
    return proc, info


def trust(ca_path):
    """graph-notes §13: REQUESTS_CA_BUNDLE overrides MSAL's verify=, httpx reads SSL_CERT_FILE."""
    system = "/etc/ssl/certs/ca-certificates.crt"
    bundle = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)
    if os.path.exists(system):
        bundle.write(open(system).read())
    bundle.write(open(ca_path).read())
    bundle.close()
    for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        os.environ[var] = bundle.name
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(var, None)
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    return bundle.name


def approve_soon(base, user_code, delay=1.5, action="approve"):
    import requests

    def run():
        time.sleep(delay)
        r = requests.post(base + "/devicelogin", data={"user_code": user_code, "action": action})
        print("  /devicelogin ->", r.status_code)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what)


def msal_checks(info):
    import msal

    base, tenant, client = info["base"], info["tenant"], info["client"]
    app = msal.PublicClientApplication(client, authority=f"{base}/{tenant}", instance_discovery=False)
    flow = app.initiate_device_flow(scopes=["User.Read.All"])
    check("user_code" in flow and flow["message"].startswith("To sign in"), "MSAL initiate_device_flow")
    approve_soon(base, flow["user_code"])
    result = app.acquire_token_by_device_flow(flow)
    check("access_token" in result, f"MSAL device flow token ({result.get('error_description', '')[:80]})")
    check(result["id_token_claims"]["aud"] == client, "id_token aud = client id")
    accounts = app.get_accounts()
    check(len(accounts) == 1, f"MSAL account from client_info: {accounts and accounts[0]['username']}")
    silent = app.acquire_token_silent(["User.Read.All"], account=accounts[0], force_refresh=True)
    check(silent and "access_token" in silent and silent["access_token"] != result["access_token"],
          "MSAL acquire_token_silent(force_refresh) uses the refresh token")
    again = app.acquire_token_silent(["User.Read.All"], account=accounts[0], force_refresh=True)
    check(again and "access_token" in again, "MSAL second refresh (rotated refresh token)")

    # Declined flow.
    flow = app.initiate_device_flow(scopes=["User.Read.All"])
    approve_soon(base, flow["user_code"], delay=0.5, action="decline")
    result = app.acquire_token_by_device_flow(flow)
    check(result.get("error") == "authorization_declined", "MSAL sees authorization_declined")

    # Instance discovery through the simulator (MSAL drops the port; the answer restores it).
    app2 = msal.PublicClientApplication(client, authority=f"{base}/{info['tenant']}",
                                        instance_discovery=f"{base}/common/discovery/instance")
    flow = app2.initiate_device_flow(scopes=["User.Read.All"])
    check("user_code" in flow, "MSAL with instance_discovery pointed at the simulator")

    cid, secret = info["apps"][0]
    conf = msal.ConfidentialClientApplication(cid, client_credential=secret, authority=f"{base}/{tenant}",
                                              instance_discovery=False)
    r = conf.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    check("access_token" in r, "MSAL acquire_token_for_client")
    r2 = conf.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    check(r2.get("token_source") == "cache", "MSAL serves the app token from its cache")
    bad = msal.ConfidentialClientApplication(cid, client_credential="wrong", authority=f"{base}/{tenant}",
                                             instance_discovery=False)
    r = bad.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    check(r.get("error") == "invalid_client" and 7000215 in r.get("error_codes", []), "MSAL sees invalid_client 7000215")


async def graph_checks(info):
    import httpx
    from azure.identity import ClientSecretCredential, DeviceCodeCredential
    from kiota_authentication_azure.azure_identity_authentication_provider import \
        AzureIdentityAuthenticationProvider
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.graph_request_adapter import options
    from msgraph_core import GraphClientFactory
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder
    from kiota_abstractions.base_request_configuration import RequestConfiguration

    base, tenant = info["base"], info["tenant"]
    cid, secret = info["apps"][0]
    scopes = ["https://graph.microsoft.com/.default"]
    cred = ClientSecretCredential(tenant, cid, secret, authority=base, disable_instance_discovery=True)
    tok = cred.get_token(*scopes)
    check(tok.token.count(".") == 2, "azure-identity ClientSecretCredential")

    def client_for(credential):
        http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(), options=options)
        auth = AzureIdentityAuthenticationProvider(credential, scopes=scopes, allowed_hosts=["127.0.0.1"])
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = base + "/v1.0"
        return GraphServiceClient(request_adapter=adapter)

    graph = client_for(cred)
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        select=["id", "userPrincipalName", "accountEnabled"], top=999)
    page = await graph.users.get(request_configuration=RequestConfiguration(query_parameters=query))
    seen, pages = set(), 1
    while True:
        for u in page.value:
            seen.add(u.id)
        if not page.odata_next_link:
            break
        page = await graph.users.with_url(page.odata_next_link).get()
        pages += 1
    check(len(seen) == 2500 and pages == 3, f"msgraph-sdk paged {len(seen)} users in {pages} pages")
    domains = await graph.domains.get()
    check(any(d.is_initial for d in domains.value), "msgraph-sdk lists domains")
    from kiota_abstractions.api_error import APIError
    try:
        await graph.users.by_user_id("00000000-0000-0000-0000-000000000001").get()
        check(False, "404 expected")
    except APIError as e:
        check(e.response_status_code == 404 and e.error.code == "Request_ResourceNotFound",
              "msgraph-sdk surfaces Request_ResourceNotFound")

    await delta_checks(graph)
    await licence_checks(graph)

    def prompt(verification_uri, user_code, expires_on):
        print("  prompt:", verification_uri, user_code)
        approve_soon(base, user_code, delay=0.5)

    dcred = DeviceCodeCredential(client_id=info["client"], authority=base, tenant_id=tenant,
                                 disable_instance_discovery=True, prompt_callback=prompt)
    me = await client_for(dcred).me.get()
    check(me.user_principal_name.startswith("admin@"), f"azure-identity DeviceCodeCredential + /me: {me.user_principal_name}")


async def delta_checks(graph):
    """msgraph-sdk's delta request builder (`/users/delta()`): a round with $select followed
    through odata_next_link to odata_delta_link, then the changes of a later round."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.models.user import User
    from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder

    query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
        select=["id", "displayName", "accountEnabled"], top=999)
    page = await graph.users.delta.get(request_configuration=RequestConfiguration(query_parameters=query))
    seen, pages, both = {}, 1, False
    while True:
        for u in page.value:
            seen[u.id] = u
        if page.odata_next_link:
            both |= page.odata_delta_link is not None
            page = await graph.users.delta.with_url(page.odata_next_link).get()
            pages += 1
            continue
        break
    check(not both, "no delta page has both links")
    delta_link = page.odata_delta_link
    check(len(seen) == 2500 and pages == 13 and "$deltatoken=" in delta_link,
          f"msgraph-sdk users.delta: {len(seen)} users in {pages} pages, then a deltaLink")
    check(all(u.user_principal_name is None and u.display_name for u in seen.values()),
          "the $select is kept in the tokens")
    renamed, removed = sorted(seen)[5], sorted(seen)[6]
    await graph.users.by_user_id(renamed).patch(User(display_name="Compat Delta"))
    await graph.users.by_user_id(removed).delete()
    page = await graph.users.delta.with_url(delta_link).get()
    got = {u.id: u for u in page.value}
    check(got[renamed].display_name == "Compat Delta" and page.odata_delta_link and not page.odata_next_link,
          "msgraph-sdk delta round sees the update")
    check(got[removed].additional_data.get("@removed") == {"reason": "changed"},
          "msgraph-sdk delta round sees the soft delete as @removed changed")
    page = await graph.users.delta.with_url(page.odata_delta_link).get()
    check(page.value == [] and page.odata_delta_link, "an empty round still ends with a deltaLink")


async def licence_checks(graph):
    """msgraph-sdk's subscribedSkus and assignLicense builders: seats move by one, a refusal
    surfaces as an APIError with Graph's code and message."""
    import uuid
    from kiota_abstractions.api_error import APIError
    from msgraph.generated.models.assigned_license import AssignedLicense
    from msgraph.generated.users.item.assign_license.assign_license_post_request_body import \
        AssignLicensePostRequestBody

    def seats(skus):
        return {k.sku_part_number: k.consumed_units for k in skus.value}

    before = seats(await graph.subscribed_skus.get())
    check(before.get("STANDARDPACK") == 0 and before.get("POWER_BI_PRO") == 24,
          f"msgraph-sdk subscribed_skus: {before}")
    e1 = uuid.UUID("18181a46-0d4e-45cd-891e-60aabd171b4e")
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=["id"], top=999)
    page = await graph.users.get(request_configuration=RequestConfiguration(query_parameters=query))
    uid = page.value[-1].id  # a generated user: a usage location, no licence
    body = AssignLicensePostRequestBody(add_licenses=[AssignedLicense(sku_id=e1, disabled_plans=[])],
                                        remove_licenses=[])
    user = await graph.users.by_user_id(uid).assign_license.post(body)
    check(user.id == uid and [l.sku_id for l in user.assigned_licenses] == [e1],
          "msgraph-sdk assign_license returns the user with the licence")
    after = seats(await graph.subscribed_skus.get())
    check(after["STANDARDPACK"] == 1, "consumedUnits moved by one")
    try:
        await graph.users.by_user_id(uid).assign_license.post(
            AssignLicensePostRequestBody(add_licenses=[], remove_licenses=[]))
        check(False, "400 expected")
    except APIError as e:
        check(e.response_status_code == 400 and e.error.code == "Request_BadRequest"
              and e.error.message.startswith("No license changes provided"),
              "msgraph-sdk surfaces the assignLicense refusal")


def main():
    proc, info = start_sim()
    try:
        trust(info["ca"])
        msal_checks(info)
        asyncio.run(graph_checks(info))
        print("ALL OK")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
