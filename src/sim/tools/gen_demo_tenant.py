#!/usr/bin/env python3
"""Generates assets/demo-tenant.json once (deterministic: fixed random seed).

Run from the repository root: python3 src/sim/tools/gen_demo_tenant.py > assets/demo-tenant.json
The output is committed; the simulator embeds it with include_str!.
"""
import json
import random
import uuid

rng = random.Random(20261127)


def guid():
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


TENANT_ID = guid()
INITIAL = "northwindtraders.onmicrosoft.com"
DEFAULT = "northwindtraders.com"
SECOND = "nwtraders.co.uk"
UNVERIFIED = "northwind-labs.io"
FEDERATED = "corp.northwindtraders.com"

domains = [
    {"id": DEFAULT, "authenticationType": "Managed", "availabilityStatus": None, "isAdminManaged": True,
     "isDefault": True, "isInitial": False, "isRoot": True, "isVerified": True,
     "passwordNotificationWindowInDays": 14, "passwordValidityPeriodInDays": 2147483647,
     "supportedServices": ["Email", "OfficeCommunicationsOnline", "Intune"], "state": None},
    {"id": INITIAL, "authenticationType": "Managed", "availabilityStatus": None, "isAdminManaged": True,
     "isDefault": False, "isInitial": True, "isRoot": True, "isVerified": True,
     "passwordNotificationWindowInDays": 14, "passwordValidityPeriodInDays": 2147483647,
     "supportedServices": ["Email", "OfficeCommunicationsOnline"], "state": None},
    {"id": SECOND, "authenticationType": "Managed", "availabilityStatus": None, "isAdminManaged": True,
     "isDefault": False, "isInitial": False, "isRoot": True, "isVerified": True,
     "passwordNotificationWindowInDays": 14, "passwordValidityPeriodInDays": 2147483647,
     "supportedServices": ["Email"], "state": None},
    {"id": FEDERATED, "authenticationType": "Federated", "availabilityStatus": None, "isAdminManaged": True,
     "isDefault": False, "isInitial": False, "isRoot": False, "isVerified": True,
     "passwordNotificationWindowInDays": 14, "passwordValidityPeriodInDays": 2147483647,
     "supportedServices": ["Email", "OrgIdAuthentication"], "state": None},
    {"id": UNVERIFIED, "authenticationType": "Managed", "availabilityStatus": None, "isAdminManaged": True,
     "isDefault": False, "isInitial": False, "isRoot": True, "isVerified": False,
     "passwordNotificationWindowInDays": 14, "passwordValidityPeriodInDays": 2147483647,
     "supportedServices": [], "state": None},
]

FIRST = """Aaliyah Adrian Aiko Alejandro Alex Alice Amara Amir Ana Andre Anika Anna Arjun Astrid Ayesha Beatriz
Benjamin Bianca Blake Bruno Camila Carlos Carmen Catherine Chen Chloe Chris Clara Daniel Daria David Deepa Diego
Dmitri Elena Elif Elijah Emeka Emily Emma Ethan Fatima Felix Fiona Gabriel Grace Hannah Hassan Hiroshi Ibrahim
Ines Isabel Ivan Jack Jamal James Jana Javier Jia Joao John Jonas Jordan Julia Kai Karim Kate Kenji Kofi Lara
Laura Leila Leo Liam Lina Lucas Lucia Maja Malik Marco Maria Mariam Mateo Maya Mei Mia Miguel Mohammed Nadia Naomi
Nathan Nia Nikhil Noah Nora Olga Oliver Omar Pablo Paula Pedro Priya Rafael Rahul Ravi Rebecca Ren Rosa Ryan Sakura
Samuel Sara Sean Sergio Sofia Sophie Stefan Sunita Tariq Thomas Tomas Valentina Victor Wei Yara Yusuf Zara Zoe""".split()
LAST = """Abbott Adeyemi Ahmed Alvarez Andersen Bauer Becker Bennett Bergstrom Brooks Castillo Chen Costa Das
Dubois Edwards Eriksson Fernandez Fischer Flores Garcia Gonzalez Gupta Hall Hansen Harris Hoffmann Horvat Hughes Ibrahim
Ito Jansen Jensen Johnson Kapoor Kaur Kelly Khan Kim Kowalski Kruger Larsen Laurent Lee Lindqvist Lopez Mahmoud Martin
Martinez Mehta Meyer Moreau Murphy Nakamura Nguyen Nielsen Novak Okafor Olsen Park Patel Pereira Petrov Quinn Ramirez
Reyes Richter Rossi Santos Sato Schmidt Schneider Silva Singh Smith Sorensen Suzuki Tanaka Taylor Thompson Torres
Tran Van-Dijk Vargas Walker Wang Weber Williams Wilson Wong Yamamoto Yilmaz Young Zhang Zimmermann""".split()
DEPARTMENTS = {
    "Sales": ["Account Executive", "Sales Manager", "Sales Representative", "Inside Sales Specialist", "Regional Sales Director"],
    "Marketing": ["Marketing Manager", "Content Strategist", "Brand Specialist", "Digital Marketing Analyst"],
    "Finance": ["Accountant", "Financial Analyst", "Controller", "Accounts Payable Clerk"],
    "Human Resources": ["HR Generalist", "Recruiter", "HR Business Partner", "Payroll Specialist"],
    "Operations": ["Operations Manager", "Logistics Coordinator", "Warehouse Supervisor", "Buyer"],
    "IT": ["Systems Administrator", "Service Desk Analyst", "Network Engineer", "IT Manager", "Security Analyst"],
    "Engineering": ["Software Engineer", "Senior Software Engineer", "QA Engineer", "Engineering Manager", "Data Engineer"],
    "Customer Service": ["Customer Service Representative", "Support Team Lead", "Customer Success Manager"],
    "Legal": ["Legal Counsel", "Paralegal", "Compliance Officer"],
    "Executive": ["Chief Executive Officer", "Chief Financial Officer", "Chief Operating Officer", "Executive Assistant"],
}
OFFICES = ["Seattle", "Redmond", "New York", "Chicago", "London", "Manchester", "Dublin", "Berlin", "Remote"]
LANGS = {"Seattle": "en-US", "Redmond": "en-US", "New York": "en-US", "Chicago": "en-US", "London": "en-GB",
         "Manchester": "en-GB", "Dublin": "en-IE", "Berlin": "de-DE", "Remote": "en-US"}
COUNTRY = {"en-US": "US", "en-GB": "GB", "en-IE": "IE", "de-DE": "DE"}


def created():
    y = rng.choice([2019, 2020, 2021, 2022, 2023, 2024, 2025])
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                                              rng.randint(0, 59), rng.randint(0, 59))


users = []
taken = set()


def user(given, surname, domain, *, dept=None, title=None, mail=True, enabled=True, nick=None, upn=None,
         display=None, guest=False, immutable=None):
    office = rng.choice(OFFICES)
    lang = LANGS[office]
    dept = dept or rng.choice(list(DEPARTMENTS))
    title = title or rng.choice(DEPARTMENTS[dept])
    if nick is None:
        base = (given + "." + surname).lower().replace(" ", "").replace("'", "")
        nick = base
        n = 2
        while (nick + "@" + domain) in taken:
            nick = "%s%d" % (base, n)
            n += 1
    upn = upn or nick + "@" + domain
    taken.add(upn)
    phone = "+1 425 555 %04d" % rng.randint(100, 9999) if lang == "en-US" else "+44 20 7946 %04d" % rng.randint(0, 999)
    u = {
        "id": guid(),
        "userPrincipalName": upn,
        "mail": (upn if not guest else None) if mail else None,
        "displayName": display or "%s %s" % (given, surname),
        "givenName": given,
        "surname": surname,
        "jobTitle": title,
        "department": dept,
        "officeLocation": office,
        "mobilePhone": phone if rng.random() < 0.35 else None,
        "businessPhones": [phone] if rng.random() < 0.7 else [],
        "preferredLanguage": lang,
        "accountEnabled": enabled,
        "mailNickname": nick,
        "userType": "Guest" if guest else "Member",
        "createdDateTime": created(),
        "usageLocation": COUNTRY[lang],
        "companyName": None if guest else "Northwind Traders",
        "employeeId": None if guest else "%06d" % rng.randint(10000, 999999),
        "onPremisesImmutableId": immutable,
    }
    if guest:
        u["mail"] = given.lower() + "@" + upn.split("_", 1)[1].split("#", 1)[0]
        u["jobTitle"] = None
        u["department"] = None
    return u


users.append(user("Megan", "Bowen", INITIAL, dept="IT", title="Global Administrator", nick="admin",
                  display="Northwind Admin"))
users.append(user("Irvin", "Sayers", DEFAULT, dept="Executive", title="Chief Executive Officer"))
names = set()
while len(users) < 292:
    g, s = rng.choice(FIRST), rng.choice(LAST)
    if (g, s) in names:
        continue
    names.add((g, s))
    r = rng.random()
    domain = SECOND if r < 0.08 else (FEDERATED if r < 0.10 else DEFAULT)
    imm = None
    if domain == FEDERATED:
        imm = __import__("base64").b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode()
    users.append(user(g, s, domain, mail=rng.random() > 0.07, immutable=imm))
# service accounts without mail
users.append(user("Scan", "To Email", DEFAULT, dept="IT", title=None, mail=False, nick="scanner",
                  display="Scan to Email (service)"))
users.append(user("Room", "Booking", DEFAULT, dept="Operations", title=None, mail=False, nick="svc-booking",
                  display="Room Booking Service"))
# guests
for g, dom in [("Lena", "fabrikam.com"), ("Tom", "contoso-partners.net"), ("Yuki", "adatum.org")]:
    nick = "%s_%s#EXT#" % (g.lower(), dom)
    users.append(user(g, "Guest", INITIAL, nick=nick, upn=nick + "@" + INITIAL, guest=True,
                      display="%s (%s)" % (g, dom)))
# ~15 disabled accounts (leavers), never the admin
for u in rng.sample(users[2:292], 15):
    u["accountEnabled"] = False
# Guests are invited (graph-notes §20) and have no usage location by default (§14.3). No random
# draws here, so everything generated after stays as it was.
for u, state, changed in zip([u for u in users if u["userType"] == "Guest"],
                             ["Accepted", "Accepted", "PendingAcceptance"],
                             ["2025-03-11T10:02:44Z", "2025-09-30T15:47:09Z", "2026-11-20T08:31:55Z"]):
    u["usageLocation"] = None
    u["creationType"] = "Invitation"
    u["externalUserState"] = state
    u["externalUserStateChangeDateTime"] = changed
for u in users:
    if u["mail"] is None and u["userType"] == "Member":
        u["proxyAddresses"] = []
    elif u["userType"] == "Member" and not u["mail"].endswith("@" + INITIAL):
        u["proxyAddresses"] = ["SMTP:" + u["mail"], "smtp:" + u["mailNickname"] + "@" + INITIAL]
    else:
        u["proxyAddresses"] = ["SMTP:" + u["mail"]]

tenant = {
    "tenant": {
        "id": TENANT_ID,
        "displayName": "Northwind Traders",
        "countryLetterCode": "US",
        "createdDateTime": "2019-03-14T09:21:07Z",
    },
    "adminUserPrincipalName": "admin@" + INITIAL,
    "apps": [
        {"clientId": guid(), "displayName": "m365sync console", "publicClient": True, "secrets": []},
        {"clientId": guid(), "displayName": "m365sync automation", "publicClient": False,
         "secrets": ["Nwt8Q~" + "".join(rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789._-~")
                                          for _ in range(34))]},
        # Fixed values, outside the random stream: apps that provoke Microsoft's refusals.
        {"clientId": "5b1f7a0e-3c2d-4e8f-9a61-7d4c2b9e0f13", "displayName": "m365sync reporting (read-only)",
         "publicClient": False, "secrets": ["Rpt8Q~Vh3kLmN2pQrS5tUvW7xYz9AbCdEfGhIjKl"],
         "permissions": ["User.Read.All", "Group.Read.All", "Domain.Read.All"]},
        {"clientId": "8e4d2c6a-1f3b-4a5c-b7d9-0e2f4a6c8b1d", "displayName": "m365sync console (not consented)",
         "publicClient": True, "secrets": [], "adminConsent": False},
        {"clientId": "c3a9e1f5-7b2d-4c6e-8a0f-1d3b5c7e9a24", "displayName": "m365sync automation (rotated secret)",
         "publicClient": False, "secrets": ["Rot8Q~Zx1Cv2Bn3Mq4Wr5Ty6Ui7Op8As9Df0GhJk"],
         "expiredSecrets": ["Old8Q~Pl0Ok9Ij8Uh7Yg6Tf5Rd4Es3Wa2Qz1XcVb"]},
        # Can manage users but holds no group permission: POST /groups and member changes
        # answer 403 Authorization_RequestDenied (and so does reading groups).
        {"clientId": "7d2f4b9c-5e1a-4c3d-8f6b-2a9e0c4d6b18", "displayName": "m365sync automation (users only)",
         "publicClient": False, "secrets": ["Usr8Q~Kp4Lm7Nq2Rs5Tv8Wx1Yz3Ab6Cd9Ef2GhJm"],
         "permissions": ["User.ReadWrite.All", "Domain.Read.All"]},
    ],
    "domains": domains,
    "users": users,
}


def former(uid, given, surname, dept, title, deleted):
    """A soft-deleted former employee: restorable, and still holding their addresses (fixed values,
    outside the random stream so the live users above stay as they were)."""
    nick = (given + "." + surname).lower()
    upn = nick + "@" + DEFAULT
    return {
        "id": uid, "userPrincipalName": upn, "mail": upn, "displayName": given + " " + surname,
        "givenName": given, "surname": surname, "jobTitle": title, "department": dept,
        "officeLocation": "Seattle", "mobilePhone": None, "businessPhones": [], "preferredLanguage": "en-US",
        "accountEnabled": True, "mailNickname": nick, "userType": "Member",
        "createdDateTime": "2022-05-09T14:02:11Z", "usageLocation": "US", "companyName": "Northwind Traders",
        "employeeId": None, "onPremisesImmutableId": None,
        "proxyAddresses": ["SMTP:" + upn, "smtp:" + nick + "@" + INITIAL],
        "deletedDateTime": deleted,
    }


def synced(uid, given, surname, sam, rid, title, dept, street, city, state, postal, manager=None):
    """A user synced from on-premises AD (onPremisesSyncEnabled: true): Graph refuses edits of
    its on-premises-mastered properties. Fixed values, outside the random stream."""
    nick = (given + "." + surname).lower()
    upn = nick + "@" + FEDERATED
    u = {
        "id": uid, "userPrincipalName": upn, "mail": upn, "displayName": given + " " + surname,
        "givenName": given, "surname": surname, "jobTitle": title, "department": dept,
        "officeLocation": city, "mobilePhone": None, "businessPhones": ["+1 206 555 %04d" % rid],
        "preferredLanguage": "en-US", "accountEnabled": True, "mailNickname": nick, "userType": "Member",
        "createdDateTime": "2021-02-08T07:12:33Z", "usageLocation": "US", "companyName": "Northwind Traders",
        "employeeId": "AD%04d" % rid, "employeeType": "Employee",
        "streetAddress": street, "city": city, "state": state, "country": "United States", "postalCode": postal,
        "onPremisesImmutableId": __import__("base64").b64encode(uuid.UUID(uid).bytes_le).decode(),
        "onPremisesSyncEnabled": True, "onPremisesLastSyncDateTime": "2026-11-27T06:10:41Z",
        "onPremisesSamAccountName": sam, "onPremisesDomainName": FEDERATED,
        "onPremisesUserPrincipalName": upn,
        "onPremisesDistinguishedName": "CN=%s %s,OU=Staff,DC=corp,DC=northwindtraders,DC=com" % (given, surname),
        "onPremisesSecurityIdentifier": "S-1-5-21-3623811015-3361044348-30300820-%d" % rid,
        "proxyAddresses": ["SMTP:" + upn, "smtp:" + nick + "@" + INITIAL],
    }
    if manager:
        u["manager"] = manager
    return u


# Synced from the on-premises AD of corp.northwindtraders.com; Rosa manages the other two.
ROSA = "3c6f0e1a-92b4-4d7e-a5c8-1f2e3d4c5b6a"
tenant["users"] += [
    synced(ROSA, "Rosa", "Delgado", "rdelgado", 1104, "Plant Manager", "Operations",
           "1 Harbor Way", "Tacoma", "WA", "98402"),
    synced("8b2d4f6a-0c1e-4a3b-9d5f-7e6a8c0b2d4f", "Tobias", "Brandt", "tbrandt", 1187, "Shift Supervisor",
           "Operations", "1 Harbor Way", "Tacoma", "WA", "98402", manager=ROSA),
    synced("e1f3a5c7-9b2d-4e6f-8a0c-2b4d6f8a0c1e", "Ngozi", "Eze", "neze", 1203, "Quality Engineer",
           "Operations", "1 Harbor Way", "Tacoma", "WA", "98402", manager=ROSA),
]

# Licences (graph-notes §14.1; real SKU and service plan ids). Microsoft 365 E3 with room,
# Power BI Pro nearly full (1 seat free), Exchange Online (Plan 1) whose mailbox plan excludes
# E3's (Exchange Online Plan 2), and Office 365 E1, unused, 5 units in their grace period.
# consumedUnits is computed by the simulator from the users' assignedLicenses.
EXO_P2, EXO_P1 = "efb87545-963c-4e0d-99df-69c6916d9eb0", "9aaf7827-d63c-4b61-89c3-182f06f82e5c"
SPO_P2, SPO_P1 = "5dbe027f-2339-4123-9542-606e4d348a72", "c7699d2e-19aa-44de-8edf-1736da088ca1"
TEAMS, SKYPE = "57ff2da0-773e-42df-b2af-ffb7a2317929", "0feaeb32-d00e-4d66-bd5a-43b5b83db82c"
SKU_E3, SKU_PBI = "05e9a617-0261-4cee-bb44-138d3ef5d965", "f8a1db68-be16-40ed-86d5-cb42ce701560"
SKU_EXO1, SKU_E1 = "4b9405b0-7788-4568-add1-99614e613b69", "18181a46-0d4e-45cd-891e-60aabd171b4e"
PLANNER, BOOKINGS = "b737dad2-2f6c-4c65-90e3-ca563267e8b9", "199a5c09-e0ca-4e37-8f7c-b05d533e1ea2"


def plan(pid, name, target="User"):
    return {"servicePlanId": pid, "servicePlanName": name, "provisioningStatus": "Success", "appliesTo": target}


def sku(sid, part, enabled, plans, subscription, warning=0):
    return {"skuId": sid, "skuPartNumber": part, "appliesTo": "User", "capabilityStatus": "Enabled",
            "prepaidUnits": {"enabled": enabled, "lockedOut": 0, "suspended": 0, "warning": warning},
            "servicePlans": plans, "subscriptionIds": [subscription]}


tenant["subscribedSkus"] = [
    sku(SKU_E3, "SPE_E3", 250, [plan(EXO_P2, "EXCHANGE_S_ENTERPRISE"), plan(SPO_P2, "SHAREPOINTENTERPRISE"),
                                plan(TEAMS, "TEAMS1"), plan(SKYPE, "MCOSTANDARD"),
                                plan("43de0ff5-c92c-492b-9116-175376d08c38", "OFFICESUBSCRIPTION"),
                                plan("c1ec4a95-1f05-45b3-a911-aa3fa01094f5", "INTUNE_A"),
                                plan("41781fb2-bc02-4b7c-bd55-b576c07bb09d", "AAD_PREMIUM"),
                                plan(PLANNER, "PROJECTWORKMANAGEMENT"), plan(BOOKINGS, "MICROSOFTBOOKINGS")],
        "7a1c3e5f-2b4d-4f6a-8c0e-1d3f5a7c9e2b"),
    sku(SKU_PBI, "POWER_BI_PRO", 25, [plan("70d33638-9c74-4d01-bfd3-562de28bd4ba", "BI_AZURE_P2"),
                                      plan("113feb6c-3fe4-4440-bddc-54d774bf0318", "EXCHANGE_S_FOUNDATION",
                                           "Company")],
        "4e6a8c0e-3f5b-4d7a-9e1c-2b4d6f8a0c3d"),
    sku(SKU_EXO1, "EXCHANGESTANDARD", 10, [plan(EXO_P1, "EXCHANGE_S_STANDARD")],
        "9c1e3a5b-7d2f-4b6e-8a0c-4e6a8c0e2f5a"),
    sku(SKU_E1, "STANDARDPACK", 50, [plan(EXO_P1, "EXCHANGE_S_STANDARD"), plan(SPO_P1, "SHAREPOINTSTANDARD"),
                                     plan(TEAMS, "TEAMS1"), plan(SKYPE, "MCOSTANDARD")],
        "2d4f6a8c-0e1b-4c3d-a5e7-6f8a0c2e4b6d", warning=5),
]
# Not in Graph's SKU data: which plans the simulator refuses together (both mailboxes, both sites).
tenant["mutuallyExclusivePlans"] = [[EXO_P1, EXO_P2], [SPO_P1, SPO_P2]]
# Not in Graph's SKU data either: plans that need another plan enabled on the user (any one of
# dependsOn), as Microsoft refuses them ("... depends on the service plan(s) ..."): Planner and
# Bookings need an Exchange Online mailbox plan.
tenant["planDependencies"] = [{"servicePlanId": PLANNER, "dependsOn": [EXO_P2, EXO_P1]},
                              {"servicePlanId": BOOKINGS, "dependsOn": [EXO_P2, EXO_P1]}]
licensable = [u for u in tenant["users"]
              if u["userType"] == "Member" and u["accountEnabled"] and u["mail"] and u["usageLocation"]]
for n, u in enumerate(licensable[:202]):
    if n < 200:
        u["assignedLicenses"] = [{"disabledPlans": [], "skuId": SKU_E3}]
        if n < 24:
            u["assignedLicenses"].append({"disabledPlans": [], "skuId": SKU_PBI})
    else:
        u["assignedLicenses"] = [{"disabledPlans": [], "skuId": SKU_EXO1}]
# Assigns licences and reads SKUs, and reads users, nothing more.
tenant["apps"].append(
    {"clientId": "2f6e8a1c-4b3d-4e5f-9a7b-6c8d0e2f4a61", "displayName": "m365sync licensing (least privilege)",
     "publicClient": False, "secrets": ["Lic8Q~Mn3Bv5Cx7Zl9Kj2Hg4Fd6Sa8Qw0ErTyUi"],
     "permissions": ["User.Read.All", "LicenseAssignment.ReadWrite.All", "Organization.Read.All"]})

# Farid Haddad is also a directory-only user in the demo: binding him meets his own old account.
tenant["deletedUsers"] = [
    former("5f0c7d1e-8b2a-4c3f-9e61-2a7d4b8c9e10", "Farid", "Haddad", "Operations", "Buyer",
           "2026-11-02T16:40:12Z"),
    former("9a3e6b42-17cd-4f58-a0b9-6c1e2d3f4a57", "Olga", "Petrov", "Finance", "Accountant",
           "2026-10-21T09:15:47Z"),
]
print(json.dumps(tenant, indent=1, ensure_ascii=False))
