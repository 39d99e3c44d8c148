//! The tenant's data: seed loading, generated users, lookup indexes, user serialization.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use anyhow::Context as _;
use serde::Deserialize;

use super::util::SplitMix;

pub const BUILTIN_SEED: &str = include_str!("../../assets/demo-tenant.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seed {
    pub tenant: SeedTenant,
    pub admin_user_principal_name: String,
    pub apps: Vec<App>,
    pub domains: Vec<serde_json::Value>,
    pub users: Vec<User>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedTenant {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub country_letter_code: Option<String>,
    #[serde(default)]
    pub created_date_time: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub client_id: String,
    pub display_name: String,
    pub public_client: bool,
    #[serde(default)]
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    pub display_name: String,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub office_location: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub business_phones: Vec<String>,
    #[serde(default)]
    pub preferred_language: Option<String>,
    #[serde(default = "yes")]
    pub account_enabled: bool,
    #[serde(default)]
    pub mail_nickname: Option<String>,
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub created_date_time: Option<String>,
    #[serde(default)]
    pub usage_location: Option<String>,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub employee_id: Option<String>,
    #[serde(default)]
    pub on_premises_immutable_id: Option<String>,
    #[serde(default)]
    pub proxy_addresses: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Everything the simulator knows about its tenant.
pub struct Tenant {
    pub id: String,
    pub display_name: String,
    pub country: String,
    pub created: String,
    pub initial_domain: String,
    pub default_domain: String,
    pub domains: Vec<serde_json::Value>,
    pub apps: Vec<App>,
    pub admin: User,
    pub users: Vec<User>,
    /// lower-case id -> index
    pub by_id: HashMap<String, u32>,
    /// lower-case UPN -> index
    pub by_upn: HashMap<String, u32>,
    /// lower-case mail -> index (first holder)
    pub by_mail: HashMap<String, u32>,
    /// indexes sorted by lower-case UPN / mail / displayName, for `startswith` and `$orderby`,
    /// built on first use so a large tenant starts fast
    sorted_upn: OnceLock<Vec<u32>>,
    sorted_mail: OnceLock<Vec<u32>>,
    sorted_display: OnceLock<Vec<u32>>,
}

impl Tenant {
    pub fn load(seed_json: &str, users: Option<usize>) -> anyhow::Result<Tenant> {
        let seed: Seed = serde_json::from_str(seed_json).context("parsing the tenant seed")?;
        let domain_id = |pred: &dyn Fn(&serde_json::Value) -> bool| {
            seed.domains
                .iter()
                .find(|d| pred(d))
                .and_then(|d| d["id"].as_str())
                .map(str::to_owned)
        };
        let initial_domain = domain_id(&|d| d["isInitial"] == true)
            .context("the seed has no domain with isInitial: true")?;
        let default_domain =
            domain_id(&|d| d["isDefault"] == true).unwrap_or_else(|| initial_domain.clone());
        let admin = seed
            .users
            .iter()
            .find(|u| {
                u.user_principal_name
                    .eq_ignore_ascii_case(&seed.admin_user_principal_name)
            })
            .cloned()
            .context("adminUserPrincipalName is not one of the seed's users")?;
        if !seed.apps.iter().any(|a| a.public_client) {
            anyhow::bail!("the seed has no public client app (publicClient: true)");
        }
        let mut list = seed.users;
        if let Some(n) = users {
            if n <= list.len() {
                list.truncate(n);
            } else {
                generate(&mut list, n, &default_domain);
            }
        }
        let mut t = Tenant {
            id: seed.tenant.id,
            display_name: seed.tenant.display_name,
            country: seed
                .tenant
                .country_letter_code
                .unwrap_or_else(|| "US".into()),
            created: seed
                .tenant
                .created_date_time
                .unwrap_or_else(|| "2019-03-14T09:21:07Z".into()),
            initial_domain,
            default_domain,
            domains: seed.domains,
            apps: seed.apps,
            admin,
            users: list,
            by_id: HashMap::new(),
            by_upn: HashMap::new(),
            by_mail: HashMap::new(),
            sorted_upn: OnceLock::new(),
            sorted_mail: OnceLock::new(),
            sorted_display: OnceLock::new(),
        };
        t.reindex()?;
        Ok(t)
    }

    fn reindex(&mut self) -> anyhow::Result<()> {
        let n = self.users.len();
        self.by_id = HashMap::with_capacity(n);
        self.by_upn = HashMap::with_capacity(n);
        self.by_mail = HashMap::with_capacity(n);
        for (i, u) in self.users.iter().enumerate() {
            let i = i as u32;
            if self.by_id.insert(u.id.to_ascii_lowercase(), i).is_some() {
                anyhow::bail!("duplicate user id {}", u.id);
            }
            if self
                .by_upn
                .insert(u.user_principal_name.to_lowercase(), i)
                .is_some()
            {
                anyhow::bail!("duplicate userPrincipalName {}", u.user_principal_name);
            }
            if let Some(m) = &u.mail {
                self.by_mail.entry(m.to_lowercase()).or_insert(i);
            }
        }
        Ok(())
    }

    fn sorted_by(&self, key: fn(&User) -> Option<&str>) -> Vec<u32> {
        let mut keys: Vec<(String, u32)> = self
            .users
            .iter()
            .enumerate()
            .filter_map(|(i, u)| key(u).map(|k| (k.to_lowercase(), i as u32)))
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|(_, i)| i).collect()
    }

    /// User indexes ordered by lower-case userPrincipalName.
    pub fn sorted_upn(&self) -> &[u32] {
        self.sorted_upn
            .get_or_init(|| self.sorted_by(|u| Some(&u.user_principal_name)))
    }

    /// Indexes of users with a mail, ordered by lower-case mail.
    pub fn sorted_mail(&self) -> &[u32] {
        self.sorted_mail
            .get_or_init(|| self.sorted_by(|u| u.mail.as_deref()))
    }

    /// User indexes ordered by lower-case displayName.
    pub fn sorted_display(&self) -> &[u32] {
        self.sorted_display
            .get_or_init(|| self.sorted_by(|u| Some(&u.display_name)))
    }

    pub fn user(&self, id_or_upn: &str) -> Option<&User> {
        let key = id_or_upn.to_lowercase();
        self.by_id
            .get(&key)
            .or_else(|| self.by_upn.get(&key))
            .map(|&i| &self.users[i as usize])
    }

    pub fn public_client_id(&self) -> &str {
        self.apps
            .iter()
            .find(|a| a.public_client)
            .map(|a| a.client_id.as_str())
            .unwrap_or_default()
    }

    pub fn app(&self, client_id: &str) -> Option<&App> {
        self.apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// Does `segment` (a URL path segment) name this tenant?
    pub fn is_addressed_by(&self, segment: &str) -> bool {
        let s = segment.to_ascii_lowercase();
        s == "organizations"
            || s == "common"
            || s == self.id.to_ascii_lowercase()
            || self.domains.iter().any(|d| {
                d["isVerified"] == true
                    && d["id"]
                        .as_str()
                        .is_some_and(|id| id.eq_ignore_ascii_case(&s))
            })
    }
}

const FIRST: &[&str] = &[
    "Aaron",
    "Abigail",
    "Adam",
    "Adaeze",
    "Aisha",
    "Akira",
    "Alan",
    "Alba",
    "Alexei",
    "Alina",
    "Amelia",
    "Anders",
    "Andrea",
    "Angela",
    "Anton",
    "Aria",
    "Arthur",
    "Ashley",
    "Ava",
    "Axel",
    "Barbara",
    "Ben",
    "Bilal",
    "Brian",
    "Brooke",
    "Caleb",
    "Carla",
    "Caroline",
    "Cheng",
    "Claire",
    "Colin",
    "Connor",
    "Cristina",
    "Dana",
    "Darius",
    "Denise",
    "Dylan",
    "Edith",
    "Eduardo",
    "Eleanor",
    "Eli",
    "Elsa",
    "Eric",
    "Esther",
    "Eva",
    "Farah",
    "Fernando",
    "Freya",
    "Gareth",
    "George",
    "Gloria",
    "Greta",
    "Hamid",
    "Harper",
    "Harvey",
    "Helen",
    "Henrik",
    "Hugo",
    "Ian",
    "Ingrid",
    "Irene",
    "Isaac",
    "Jasmine",
    "Jason",
    "Jennifer",
    "Jin",
    "Joanna",
    "Jorge",
    "Joseph",
    "Kamal",
    "Karen",
    "Katarina",
    "Kevin",
    "Kim",
    "Kira",
    "Lars",
    "Layla",
    "Leon",
    "Lily",
    "Lorenzo",
    "Louise",
    "Luis",
    "Madeleine",
    "Magnus",
    "Mario",
    "Martha",
    "Matthew",
    "Michelle",
    "Milan",
    "Monica",
    "Nadine",
    "Neil",
    "Nicole",
    "Niklas",
    "Nina",
    "Olivia",
    "Oscar",
    "Patrick",
    "Peter",
    "Petra",
    "Quentin",
    "Rachel",
    "Ramon",
    "Rania",
    "Richard",
    "Rita",
    "Robert",
    "Ruth",
    "Sabrina",
    "Samir",
    "Sandra",
    "Simon",
    "Sonia",
    "Stella",
    "Steven",
    "Svetlana",
    "Takumi",
    "Teresa",
    "Theo",
    "Tina",
    "Uma",
    "Vera",
    "Viktor",
    "Walter",
    "Wendy",
    "Xavier",
    "Yasmin",
    "Yuri",
    "Zain",
    "Zofia",
];
const LAST: &[&str] = &[
    "Acosta",
    "Aguilar",
    "Akhtar",
    "Allen",
    "Anderson",
    "Antonelli",
    "Baker",
    "Banerjee",
    "Barnes",
    "Bianchi",
    "Blom",
    "Bose",
    "Brown",
    "Campbell",
    "Carter",
    "Chandra",
    "Chavez",
    "Clarke",
    "Collins",
    "Cruz",
    "Dahl",
    "Davies",
    "Diaz",
    "Dimitrov",
    "Doyle",
    "Evans",
    "Farouk",
    "Ferreira",
    "Fontaine",
    "Foster",
    "Fox",
    "Friedman",
    "Gallagher",
    "Gomez",
    "Grant",
    "Green",
    "Gustafsson",
    "Haas",
    "Hayes",
    "Hernandez",
    "Holm",
    "Howard",
    "Hussain",
    "Iqbal",
    "Ivanova",
    "Jackson",
    "James",
    "Jovanovic",
    "Kaiser",
    "Kato",
    "Keller",
    "Khalil",
    "Klein",
    "Koch",
    "Kumar",
    "Lambert",
    "Lang",
    "Lewis",
    "Liu",
    "Lund",
    "Marshall",
    "Mendes",
    "Miller",
    "Mitchell",
    "Molina",
    "Morgan",
    "Muller",
    "Nash",
    "Nowak",
    "Obi",
    "Ortiz",
    "Owens",
    "Palmer",
    "Peters",
    "Popescu",
    "Price",
    "Rahman",
    "Reed",
    "Rivera",
    "Roberts",
    "Rodriguez",
    "Romano",
    "Ross",
    "Russo",
    "Saito",
    "Sanchez",
    "Schwarz",
    "Scott",
    "Shah",
    "Shaw",
    "Simmons",
    "Stewart",
    "Sullivan",
    "Svensson",
    "Takahashi",
    "Turner",
    "Vasquez",
    "Vogel",
    "Ward",
    "Watanabe",
    "Watson",
    "White",
    "Wright",
    "Xu",
    "Yang",
    "Yusuf",
    "Zeller",
];
const DEPTS: &[(&str, &[&str])] = &[
    (
        "Sales",
        &["Account Executive", "Sales Representative", "Sales Manager"],
    ),
    ("Marketing", &["Marketing Specialist", "Content Strategist"]),
    ("Finance", &["Accountant", "Financial Analyst"]),
    (
        "Operations",
        &["Logistics Coordinator", "Operations Analyst", "Buyer"],
    ),
    ("IT", &["Service Desk Analyst", "Systems Administrator"]),
    (
        "Engineering",
        &["Software Engineer", "QA Engineer", "Data Engineer"],
    ),
    (
        "Customer Service",
        &["Customer Service Representative", "Support Team Lead"],
    ),
];
const OFFICES: &[&str] = &[
    "Seattle", "New York", "Chicago", "London", "Dublin", "Berlin", "Remote",
];

/// Appends deterministic users until `list` holds `n`: same `n`, same users.
fn generate(list: &mut Vec<User>, n: usize, domain: &str) {
    let mut taken: HashSet<String> = list
        .iter()
        .map(|u| u.user_principal_name.to_lowercase())
        .collect();
    let mut next_suffix: HashMap<String, u32> = HashMap::new();
    list.reserve(n - list.len());
    let mut i = 0u64;
    while list.len() < n {
        i += 1;
        let mut rng = SplitMix(0x5EED_0000_0000_0000 ^ i);
        let given = FIRST[rng.below(FIRST.len())];
        let surname = LAST[rng.below(LAST.len())];
        let (dept, titles) = DEPTS[rng.below(DEPTS.len())];
        let title = titles[rng.below(titles.len())];
        let office = OFFICES[rng.below(OFFICES.len())];
        let base = format!("{}.{}", given.to_lowercase(), surname.to_lowercase());
        let nick = loop {
            let k = next_suffix.entry(base.clone()).or_insert(1);
            let candidate = if *k == 1 {
                base.clone()
            } else {
                format!("{base}{k}")
            };
            *k += 1;
            if taken.insert(format!("{candidate}@{domain}")) {
                break candidate;
            }
        };
        let upn = format!("{nick}@{domain}");
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        let id = uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string();
        let r = rng.next_u64();
        let has_mail = r % 100 >= 6;
        let enabled = (r >> 8) % 100 >= 5;
        let phone = format!("+1 425 555 {:04}", (r >> 16) % 10_000);
        let created = format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            2020 + (r >> 24) % 6,
            1 + (r >> 28) % 12,
            1 + (r >> 32) % 28,
            (r >> 40) % 24,
            (r >> 45) % 60,
            (r >> 51) % 60
        );
        let us = !matches!(office, "London" | "Dublin" | "Berlin");
        list.push(User {
            id,
            mail: has_mail.then(|| upn.clone()),
            proxy_addresses: if has_mail {
                vec![format!("SMTP:{upn}")]
            } else {
                Vec::new()
            },
            user_principal_name: upn,
            display_name: format!("{given} {surname}"),
            given_name: Some(given.into()),
            surname: Some(surname.into()),
            job_title: Some(title.into()),
            department: Some(dept.into()),
            office_location: Some(office.into()),
            mobile_phone: ((r >> 20) % 3 == 0).then(|| phone.clone()),
            business_phones: if (r >> 22) % 4 != 0 {
                vec![phone]
            } else {
                Vec::new()
            },
            preferred_language: Some(if us { "en-US" } else { "en-GB" }.into()),
            account_enabled: enabled,
            mail_nickname: Some(nick),
            user_type: Some("Member".into()),
            created_date_time: Some(created),
            usage_location: Some(if us { "US" } else { "GB" }.into()),
            company_name: Some("Northwind Traders".into()),
            employee_id: Some(format!("{:06}", 100_000 + i)),
            on_premises_immutable_id: None,
        });
    }
}

/// A user property as Graph names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prop {
    BusinessPhones,
    DisplayName,
    GivenName,
    JobTitle,
    Mail,
    MobilePhone,
    OfficeLocation,
    PreferredLanguage,
    Surname,
    UserPrincipalName,
    Id,
    AccountEnabled,
    Department,
    MailNickname,
    UserType,
    CreatedDateTime,
    UsageLocation,
    CompanyName,
    EmployeeId,
    OnPremisesImmutableId,
    ProxyAddresses,
    /// A real user property the simulator does not model: always `null` (or `[]`).
    Unmodeled(&'static str, bool),
}

pub const DEFAULT_PROPS: &[Prop] = &[
    Prop::BusinessPhones,
    Prop::DisplayName,
    Prop::GivenName,
    Prop::JobTitle,
    Prop::Mail,
    Prop::MobilePhone,
    Prop::OfficeLocation,
    Prop::PreferredLanguage,
    Prop::Surname,
    Prop::UserPrincipalName,
    Prop::Id,
];

const MODELED: &[(&str, Prop)] = &[
    ("businessPhones", Prop::BusinessPhones),
    ("displayName", Prop::DisplayName),
    ("givenName", Prop::GivenName),
    ("jobTitle", Prop::JobTitle),
    ("mail", Prop::Mail),
    ("mobilePhone", Prop::MobilePhone),
    ("officeLocation", Prop::OfficeLocation),
    ("preferredLanguage", Prop::PreferredLanguage),
    ("surname", Prop::Surname),
    ("userPrincipalName", Prop::UserPrincipalName),
    ("id", Prop::Id),
    ("accountEnabled", Prop::AccountEnabled),
    ("department", Prop::Department),
    ("mailNickname", Prop::MailNickname),
    ("userType", Prop::UserType),
    ("createdDateTime", Prop::CreatedDateTime),
    ("usageLocation", Prop::UsageLocation),
    ("companyName", Prop::CompanyName),
    ("employeeId", Prop::EmployeeId),
    ("onPremisesImmutableId", Prop::OnPremisesImmutableId),
    ("proxyAddresses", Prop::ProxyAddresses),
];

/// Real properties we answer with null (false = scalar, true = collection -> `[]`).
const UNMODELED: &[(&str, bool)] = &[
    ("ageGroup", false),
    ("city", false),
    ("country", false),
    ("state", false),
    ("postalCode", false),
    ("streetAddress", false),
    ("faxNumber", false),
    ("employeeType", false),
    ("employeeHireDate", false),
    ("employeeLeaveDateTime", false),
    ("externalUserState", false),
    ("externalUserStateChangeDateTime", false),
    ("creationType", false),
    ("passwordPolicies", false),
    ("onPremisesSyncEnabled", false),
    ("onPremisesDistinguishedName", false),
    ("onPremisesDomainName", false),
    ("onPremisesSamAccountName", false),
    ("onPremisesUserPrincipalName", false),
    ("onPremisesLastSyncDateTime", false),
    ("onPremisesSecurityIdentifier", false),
    ("lastPasswordChangeDateTime", false),
    ("signInSessionsValidFromDateTime", false),
    ("securityIdentifier", false),
    ("showInAddressList", false),
    ("legalAgeGroupClassification", false),
    ("consentProvidedForMinor", false),
    ("preferredDataLocation", false),
    ("isResourceAccount", false),
    ("deletedDateTime", false),
    ("otherMails", true),
    ("imAddresses", true),
    ("assignedLicenses", true),
    ("assignedPlans", true),
    ("identities", true),
];

impl Prop {
    pub fn parse(name: &str) -> Option<Prop> {
        MODELED
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| *p)
            .or_else(|| {
                UNMODELED
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(n, c)| Prop::Unmodeled(n, *c))
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            Prop::Unmodeled(n, _) => n,
            p => MODELED
                .iter()
                .find(|(_, q)| *q == p)
                .map(|(n, _)| *n)
                .unwrap_or(""),
        }
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes exactly as JSON needs; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_opt(out: &mut Vec<u8>, s: &Option<String>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_list(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, s);
    }
    out.push(b']');
}

/// Writes one user as a JSON object with exactly the given properties, in that order.
pub fn write_user(out: &mut Vec<u8>, u: &User, props: &[Prop]) {
    out.push(b'{');
    for (i, p) in props.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, p.name());
        out.push(b':');
        match p {
            Prop::BusinessPhones => write_list(out, &u.business_phones),
            Prop::DisplayName => write_str(out, &u.display_name),
            Prop::GivenName => write_opt(out, &u.given_name),
            Prop::JobTitle => write_opt(out, &u.job_title),
            Prop::Mail => write_opt(out, &u.mail),
            Prop::MobilePhone => write_opt(out, &u.mobile_phone),
            Prop::OfficeLocation => write_opt(out, &u.office_location),
            Prop::PreferredLanguage => write_opt(out, &u.preferred_language),
            Prop::Surname => write_opt(out, &u.surname),
            Prop::UserPrincipalName => write_str(out, &u.user_principal_name),
            Prop::Id => write_str(out, &u.id),
            Prop::AccountEnabled => {
                out.extend_from_slice(if u.account_enabled { b"true" } else { b"false" })
            }
            Prop::Department => write_opt(out, &u.department),
            Prop::MailNickname => write_opt(out, &u.mail_nickname),
            Prop::UserType => write_opt(out, &u.user_type),
            Prop::CreatedDateTime => write_opt(out, &u.created_date_time),
            Prop::UsageLocation => write_opt(out, &u.usage_location),
            Prop::CompanyName => write_opt(out, &u.company_name),
            Prop::EmployeeId => write_opt(out, &u.employee_id),
            Prop::OnPremisesImmutableId => write_opt(out, &u.on_premises_immutable_id),
            Prop::ProxyAddresses => write_list(out, &u.proxy_addresses),
            Prop::Unmodeled(_, true) => out.extend_from_slice(b"[]"),
            Prop::Unmodeled(_, false) => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_seed_loads_and_generation_is_deterministic() {
        let t = Tenant::load(BUILTIN_SEED, None).unwrap();
        assert!(t.users.len() > 250);
        assert!(t.initial_domain.ends_with(".onmicrosoft.com"));
        let a = Tenant::load(BUILTIN_SEED, Some(5000)).unwrap();
        let b = Tenant::load(BUILTIN_SEED, Some(5000)).unwrap();
        assert_eq!(a.users.len(), 5000);
        for (x, y) in a.users.iter().zip(&b.users) {
            assert_eq!(x.id, y.id);
            assert_eq!(x.user_principal_name, y.user_principal_name);
        }
        let generated = &a.users[t.users.len()..];
        assert!(generated.iter().all(|u| u
            .user_principal_name
            .ends_with(&format!("@{}", a.default_domain))));
        let small = Tenant::load(BUILTIN_SEED, Some(3)).unwrap();
        assert_eq!(small.users.len(), 3);
    }
}
