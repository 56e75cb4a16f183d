//! One departure, end to end, against real servers: Active Directory (Samba AD DC), OpenLDAP
//! (slapd with ppolicy), SCIM (scim2-server) and a secrets vault (OpenBao), plus a manual step:
//! `offboard start --non-interactive`, then `confirm`, then the evidence verified by OpenSSH's
//! `ssh-keygen`, then drift found by `verify`.

use crate::common;

use std::process::Command;

use common::servers::RealServer;
use serde_json::{Value, json};

const SCIM_TOKEN: &str = "e2e-scim-token-4c1d";
const BAO_ROOT: &str = "e2e-bao-root-77aa";
/// The directories' admin password, as set by tests/servers/start-{samba-ad,openldap}.sh.
const DIR_ADMIN_PW: &str = "Passw0rd!Admin";

/// Apply an LDIF change as the directory's admin, over verified LDAPS.
fn ldapmodify(url: &str, ca: &std::path::Path, bind_dn: &str, ldif: &str) {
    use std::io::Write;
    let mut child = Command::new("ldapmodify")
        .args(["-x", "-H", url, "-D", bind_dn, "-w", DIR_ADMIN_PW])
        .env("LDAPTLS_CACERT", ca)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ldif.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ldapmodify {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Read one attribute of one entry as the admin.
fn ldap_attr(
    url: &str,
    ca: &std::path::Path,
    bind_dn: &str,
    base: &str,
    filter: &str,
    attr: &str,
) -> String {
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-H",
            url,
            "-D",
            bind_dn,
            "-w",
            DIR_ADMIN_PW,
            "-b",
            base,
            filter,
            attr,
        ])
        .env("LDAPTLS_CACERT", ca)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ldapsearch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{attr}: ")).map(str::to_string))
        .unwrap_or_default()
}

/// The value AD wants in `unicodePwd`: the quoted password in UTF-16LE, base64.
fn unicode_pwd(pw: &str) -> String {
    let bytes: Vec<u8> = format!("\"{pw}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut out = out;
    out.stdin.take().unwrap().write_all(&bytes).unwrap();
    String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()
}

struct Http {
    client: reqwest::Client,
}

impl Http {
    async fn call(
        &self,
        method: &str,
        url: &str,
        auth: (&str, &str),
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .client
            .request(method.parse().unwrap(), url)
            .header(auth.0, auth.1);
        if let Some(b) = body {
            r = r.header("content-type", "application/json").json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn offboard(state: &std::path::Path, dir: &std::path::Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("offboard"));
    c.current_dir(dir)
        .env("OFFBOARD_STATE_DIR", state)
        .env("OFFBOARD_ACTOR", "e2e@corp.example")
        .env("NO_COLOR", "1")
        .env("E2E_SCIM_TOKEN", SCIM_TOKEN)
        .env("E2E_BAO_TOKEN", BAO_ROOT)
        .env("E2E_DIR_PW", DIR_ADMIN_PW);
    c
}

#[test]
fn a_departure_across_real_servers_with_a_manual_step_and_ssh_keygen_verification() {
    let Some(scim) = RealServer::scim(SCIM_TOKEN) else {
        return;
    };
    let Some(bao) = RealServer::openbao(BAO_ROOT, false) else {
        return;
    };
    let Some(samba) = RealServer::samba() else {
        return;
    };
    let Some(slapd) = RealServer::openldap() else {
        return;
    };
    let ad_url = "ldaps://127.0.0.1";
    let ad_admin = "Administrator@corp.test";
    let ol_url = format!("ldaps://127.0.0.1:{}", slapd.port + 1);
    let ol_admin = "cn=admin,dc=corp,dc=test";

    // Alice in AD (enabled, with a password) and in OpenLDAP.
    let alice_ad = "CN=Alice E2E,CN=Users,DC=corp,DC=test";
    ldapmodify(
        ad_url,
        &samba.ca(),
        ad_admin,
        &format!(
            "dn: {alice_ad}\nchangetype: add\nobjectClass: user\nsAMAccountName: alice\nuserPrincipalName: alice@corp.test\n\n\
             dn: {alice_ad}\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: {}\n-\n\n\
             dn: {alice_ad}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 512\n-\n",
            unicode_pwd("Al1ce!E2E-pw")
        ),
    );
    ldapmodify(
        &ol_url,
        &slapd.ca(),
        ol_admin,
        "dn: uid=alice,ou=people,dc=corp,dc=test\nchangetype: add\nobjectClass: inetOrgPerson\nuid: alice\ncn: alice\nsn: E2E\nmail: alice@corp.test\nuserPassword: alice-ol-pw\n",
    );
    let scim_url = format!("http://127.0.0.1:{}/v2", scim.port);
    let bao_url = format!("http://127.0.0.1:{}", bao.port);

    // The person exists everywhere, with live access.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = Http {
        client: reqwest::Client::new(),
    };
    let bearer = format!("Bearer {SCIM_TOKEN}");
    let scim_auth = ("authorization", bearer.as_str());
    let bao_auth = ("x-vault-token", BAO_ROOT);
    let (scim_id, alice_token) = rt.block_on(async {
        let (s, v) = http
            .call(
                "POST",
                &format!("{scim_url}/Users"),
                scim_auth,
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "alice@corp.example",
                    "active": true,
                })),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let v1 = |p: &str| format!("{bao_url}/v1/{p}");
        for (m, p, b) in [
            ("POST", "sys/auth/userpass", json!({"type": "userpass"})),
            (
                "PUT",
                "sys/policies/acl/team",
                json!({"policy": "path \"secret/data/team/*\" { capabilities = [\"read\"] }"}),
            ),
            (
                "POST",
                "auth/userpass/users/alice",
                json!({"password": "alice-pw", "token_policies": "team"}),
            ),
            (
                "POST",
                "secret/data/team/db",
                json!({"data": {"password": "known-to-alice"}}),
            ),
        ] {
            let (s, v) = http.call(m, &v1(p), bao_auth, Some(b)).await;
            assert!((200..300).contains(&s), "{m} {p}: {s} {v}");
        }
        let (s, v) = http
            .call(
                "POST",
                &v1("auth/userpass/login/alice"),
                ("x-ignore", ""),
                Some(json!({"password": "alice-pw"})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        (
            v["id"].as_str().map(str::to_string).unwrap_or_default(),
            v["auth"]["client_token"].as_str().unwrap().to_string(),
        )
    });
    let _ = scim_id;

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::write(
        dir.path().join("offboard.toml"),
        format!(
            r#"
[runbook]
name = "E2E leaver"

[systems.ad]
kind = "ldap"
flavor = "active_directory"
base_url = "{ad_url}"
ca_file = "{ad_ca}"
bind_dn = "{ad_admin}"
bind_password = {{ env = "E2E_DIR_PW" }}
base_dn = "DC=corp,DC=test"
user = "{{{{ user.id }}}}@corp.test"

[systems.ldap]
kind = "ldap"
flavor = "openldap"
base_url = "{ol_url}"
ca_file = "{ol_ca}"
bind_dn = "{ol_admin}"
bind_password = {{ env = "E2E_DIR_PW" }}
base_dn = "dc=corp,dc=test"
user = "{{{{ user.id }}}}@corp.test"

[[step]]
id = "ad-disable"
lane = "it"
system = "ad"
action = "disable_account"

[[step]]
id = "ldap-lock"
lane = "it"
system = "ldap"
action = "lock_account"

[systems.app]
kind = "scim"
base_url = "{scim_url}"
token = {{ env = "E2E_SCIM_TOKEN" }}
user = "{{{{ user.id }}}}@corp.example"

[systems.vault]
kind = "vault"
base_url = "{bao_url}"
token = {{ env = "E2E_BAO_TOKEN" }}

[[step]]
id = "app-deactivate"
lane = "saas"
system = "app"
action = "deactivate_user"

[[step]]
id = "vault-tokens"
lane = "security"
system = "vault"
action = "revoke_tokens"

[[step]]
id = "vault-entity"
lane = "security"
system = "vault"
action = "disable_entity"
after = ["vault-tokens"]

[[step]]
id = "vault-rotate"
lane = "security"
system = "vault"
action = "rotate_secret"
params = {{ paths = ["team/db"] }}
phase = "recover"

[[step]]
id = "laptop"
lane = "facilities"
manual = "Collect the laptop of {{{{ user.id }}}}"
fields = ["tracking_number"]
owner = "facilities@corp.example"
"#,
            ad_ca = samba.ca().display(),
            ol_ca = slapd.ca().display(),
        ),
    )
    .unwrap();

    let out = offboard(&state, dir.path())
        .args(["--json", "start", "alice", "--non-interactive"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v["departure"].as_str().unwrap().to_string();
    for s in v["steps"].as_array().unwrap() {
        let want = if s["id"] == "laptop" {
            "pending"
        } else {
            "done"
        };
        assert_eq!(s["status"], want, "{s}\n{stderr}");
    }

    // The live systems agree.
    rt.block_on(async {
        let (_, list) = http
            .call(
                "GET",
                &format!("{scim_url}/Users?filter=userName%20eq%20%22alice%40corp.example%22"),
                scim_auth,
                None,
            )
            .await;
        assert_eq!(list["Resources"][0]["active"], false, "{list}");
        let (s, _) = http
            .call(
                "GET",
                &format!("{bao_url}/v1/auth/token/lookup-self"),
                ("x-vault-token", &alice_token),
                None,
            )
            .await;
        assert_eq!(s, 403, "alice's old vault token still works");
        let (_, meta) = http
            .call(
                "GET",
                &format!("{bao_url}/v1/secret/metadata/team/db"),
                bao_auth,
                None,
            )
            .await;
        assert_eq!(meta["data"]["current_version"], 2, "{meta}");
    });
    let uac: u32 = ldap_attr(
        ad_url,
        &samba.ca(),
        ad_admin,
        "DC=corp,DC=test",
        "(sAMAccountName=alice)",
        "userAccountControl",
    )
    .parse()
    .unwrap();
    assert_eq!(uac & 2, 2, "AD account not disabled: {uac}");
    let locked = ldap_attr(
        &ol_url,
        &slapd.ca(),
        ol_admin,
        "dc=corp,dc=test",
        "(uid=alice)",
        "pwdAccountLockedTime",
    );
    assert_eq!(locked, "000001010000Z");
    // No secret value reached the journal or the evidence.
    let dep = state.join("departures").join(&id);
    for f in std::fs::read_dir(&dep).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap_or_default();
        for secret in [
            SCIM_TOKEN,
            BAO_ROOT,
            DIR_ADMIN_PW,
            "known-to-alice",
            &alice_token,
        ] {
            assert!(!text.contains(secret), "a secret reached the state dir");
        }
    }

    // The facilities team confirms the laptop later.
    let out = offboard(&state, dir.path())
        .args([
            "confirm",
            &id,
            "laptop",
            "--field",
            "tracking_number=1Z-E2E",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = offboard(&state, dir.path())
        .args(["status", &id])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // An auditor with nothing but OpenSSH accepts the evidence.
    let keys = offboard(&state, dir.path())
        .args(["-q", "--json", "keys", "show"])
        .output()
        .unwrap();
    let keys: Value = serde_json::from_slice(&keys.stdout).unwrap();
    let signers = dir.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!("{}\n", keys["allowed_signers"].as_str().unwrap()),
    )
    .unwrap();
    let evidence = dep.join(format!("{id}.json"));
    let ok = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args(["-I", "offboard", "-n", "offboard-evidence", "-s"])
        .arg(dep.join(format!("{id}.json.sig")))
        .stdin(std::fs::File::open(&evidence).unwrap())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = offboard(&state, dir.path())
        .args(["evidence", "verify", "--allowed-signers"])
        .arg(&signers)
        .arg(&evidence)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Someone re-enables the SCIM account behind the tool's back: verify finds it (exit 4).
    rt.block_on(async {
        let (_, list) = http
            .call(
                "GET",
                &format!("{scim_url}/Users?filter=userName%20eq%20%22alice%40corp.example%22"),
                scim_auth,
                None,
            )
            .await;
        let uid = list["Resources"][0]["id"].as_str().unwrap().to_string();
        let (s, v) = http
            .call(
                "PATCH",
                &format!("{scim_url}/Users/{uid}"),
                scim_auth,
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": true}],
                })),
            )
            .await;
        assert!((200..300).contains(&s), "{s} {v}");
    });
    let out = offboard(&state, dir.path())
        .args(["--json", "verify", &id])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["drift"], json!(["app-deactivate"]));
}

/// Issue 15's "done when": a rescinded termination rolled back on Samba AD and SCIM. Alice is
/// disabled in AD, taken out of two AD groups and given a new random password; her SCIM account
/// is deactivated and taken out of its group; the badge is still to collect. HR rescinds:
/// `offboard rollback --out`, then `start --plan`. AD has her enabled and in both groups again
/// (read back by plain `ldapsearch`), SCIM has her active and in her group, the badge step is
/// cancelled, and the signed evidence shows each step's before and after, and that the password
/// could not be restored, and why (her old password stays refused).
#[test]
fn a_rescinded_termination_is_rolled_back_on_samba_ad_and_scim() {
    use common::cli_env::{CliEnv, text};
    let Some(scim) = RealServer::scim(SCIM_TOKEN) else {
        return;
    };
    let Some(samba) = RealServer::samba() else {
        return;
    };
    let ad_url = "ldaps://127.0.0.1";
    let ad_admin = "Administrator@corp.test";
    let base = "DC=corp,DC=test";
    let alice_dn = "CN=Alice Rescinded,CN=Users,DC=corp,DC=test";
    let vpn_dn = "CN=Rollback VPN,CN=Users,DC=corp,DC=test";
    let fin_dn = "CN=Rollback Finance,CN=Users,DC=corp,DC=test";
    let old_pw = "Al1ce!Rescind-pw";
    ldapmodify(
        ad_url,
        &samba.ca(),
        ad_admin,
        &format!(
            "dn: {alice_dn}\nchangetype: add\nobjectClass: user\nsAMAccountName: arescind\nuserPrincipalName: arescind@corp.test\n\n\
             dn: {alice_dn}\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: {}\n-\n\n\
             dn: {alice_dn}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 512\n-\n\n\
             dn: {vpn_dn}\nchangetype: add\nobjectClass: group\nsAMAccountName: rollback-vpn\nmember: {alice_dn}\n\n\
             dn: {fin_dn}\nchangetype: add\nobjectClass: group\nsAMAccountName: rollback-finance\nmember: {alice_dn}\n",
            unicode_pwd(old_pw)
        ),
    );
    let member_of = || -> Vec<String> {
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                ad_url,
                "-D",
                ad_admin,
            ])
            .args([
                "-w",
                DIR_ADMIN_PW,
                "-b",
                base,
                "(sAMAccountName=arescind)",
                "memberOf",
            ])
            .env("LDAPTLS_CACERT", samba.ca())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("memberOf: ").map(str::to_string))
            .collect();
        v.sort();
        v
    };
    let uac = || -> u32 {
        ldap_attr(
            ad_url,
            &samba.ca(),
            ad_admin,
            base,
            "(sAMAccountName=arescind)",
            "userAccountControl",
        )
        .parse()
        .unwrap()
    };
    let binds = |pw: &str| -> bool {
        // Samba has no WhoAmI operation: a base search of the RootDSE binds as her.
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-H",
                ad_url,
                "-D",
                "arescind@corp.test",
                "-w",
                pw,
            ])
            .args(["-s", "base", "-b", "", "(objectClass=*)", "dnsHostName"])
            .env("LDAPTLS_CACERT", samba.ca())
            .output()
            .unwrap();
        eprintln!(
            "bind as arescind: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success()
    };
    let mut groups_before = vec![fin_dn.to_string(), vpn_dn.to_string()];
    groups_before.sort();
    assert_eq!(member_of(), groups_before);
    assert!(binds(old_pw), "alice cannot bind before the departure");

    // Alice in SCIM, active, in a group with Bob.
    let scim_url = format!("http://127.0.0.1:{}/v2", scim.port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = Http {
        client: reqwest::Client::new(),
    };
    let bearer = format!("Bearer {SCIM_TOKEN}");
    let scim_auth = ("authorization", bearer.as_str());
    let (alice_id, group_id) = rt.block_on(async {
        let mut ids = Vec::new();
        for name in ["arescind@corp.example", "bob-rescind@corp.example"] {
            let (s, v) = http
                .call(
                    "POST",
                    &format!("{scim_url}/Users"),
                    scim_auth,
                    Some(json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": name,
                        "active": true,
                    })),
                )
                .await;
            assert_eq!(s, 201, "{v}");
            ids.push(v["id"].as_str().unwrap().to_string());
        }
        let (s, g) = http
            .call(
                "POST",
                &format!("{scim_url}/Groups"),
                scim_auth,
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "rescind-eng",
                    "members": [{"value": ids[0]}, {"value": ids[1]}],
                })),
            )
            .await;
        assert_eq!(s, 201, "{g}");
        (ids[0].clone(), g["id"].as_str().unwrap().to_string())
    });
    let scim_state = |rt: &tokio::runtime::Runtime| -> (Value, Vec<String>) {
        rt.block_on(async {
            let (_, u) = http
                .call(
                    "GET",
                    &format!("{scim_url}/Users/{alice_id}"),
                    scim_auth,
                    None,
                )
                .await;
            let (_, g) = http
                .call(
                    "GET",
                    &format!("{scim_url}/Groups/{group_id}"),
                    scim_auth,
                    None,
                )
                .await;
            let members = g["members"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|m| m["value"].as_str().map(str::to_string))
                .collect();
            (u["active"].clone(), members)
        })
    };

    let mut env = CliEnv::new();
    env.var("E2E_SCIM_TOKEN", SCIM_TOKEN);
    env.var("E2E_DIR_PW", DIR_ADMIN_PW);
    env.write_runbook(&format!(
        r#"
[runbook]
name = "Rescindable leaver"

[systems.ad]
kind = "ldap"
flavor = "active_directory"
base_url = "{ad_url}"
ca_file = "{ad_ca}"
bind_dn = "{ad_admin}"
bind_password = {{ env = "E2E_DIR_PW" }}
base_dn = "{base}"
user = "{{{{ user.id }}}}@corp.test"

[systems.app]
kind = "scim"
base_url = "{scim_url}"
token = {{ env = "E2E_SCIM_TOKEN" }}
user = "{{{{ user.id }}}}@corp.example"

[[step]]
id = "ad-disable"
lane = "it"
system = "ad"
action = "disable_account"

[[step]]
id = "ad-groups"
lane = "it"
system = "ad"
action = "remove_from_groups"
after = ["ad-disable"]

[[step]]
id = "ad-password"
lane = "it"
system = "ad"
action = "reset_password"
after = ["ad-disable"]

[[step]]
id = "app-deactivate"
lane = "saas"
system = "app"
action = "deactivate_user"

[[step]]
id = "app-groups"
lane = "saas"
system = "app"
action = "remove_from_groups"
after = ["app-deactivate"]

[[step]]
id = "badge"
lane = "facilities"
manual = "Collect the badge of {{{{ user.id }}}}"
owner = "facilities@corp.example"
"#,
        ad_ca = samba.ca().display(),
    ));
    let out = env.run(&[
        "start",
        "arescind",
        "-r",
        "offboard.toml",
        "--type",
        "involuntary",
        "--non-interactive",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = env.departure_of("arescind").unwrap();
    // Cut everywhere.
    assert_eq!(uac() & 2, 2);
    assert!(member_of().is_empty(), "{:?}", member_of());
    assert!(!binds(old_pw));
    let (active, members) = scim_state(&rt);
    assert_eq!(active, json!(false));
    assert!(!members.contains(&alice_id));

    // HR rescinds the termination.
    let out = env.run(&["rollback", &id, "--out", "rollback.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = text(&out);
    assert!(plan.contains("ad-password"), "{plan}");
    let out = env.run(&["start", "--plan", "rollback.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Back everywhere, read by plain LDAP and SCIM, not through offboard.
    assert_eq!(uac() & 2, 0, "AD account still disabled");
    assert_eq!(member_of(), groups_before);
    let (active, members) = scim_state(&rt);
    assert_eq!(active, json!(true));
    assert!(members.contains(&alice_id), "{members:?}");
    // The password is the one thing that cannot come back.
    assert!(!binds(old_pw), "the old password works again");

    env.assert_evidence_verifies(&id);
    let ev: Value =
        serde_json::from_slice(&std::fs::read(env.evidence_path(&id)).unwrap()).unwrap();
    let rb = &ev["predicate"]["rollback"];
    assert_eq!(rb["complete"], true, "{rb}");
    assert_eq!(rb["cancelled"][0]["step"], "badge", "{rb}");
    let step = |s: &str| {
        rb["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["step"] == s)
            .unwrap_or_else(|| panic!("no rollback step {s}: {rb}"))
            .clone()
    };
    let d = step("ad-disable");
    assert_eq!(d["outcome"], "restored", "{d}");
    assert_eq!(d["before"]["disabled"], false, "{d}");
    assert_eq!(d["after"]["disabled"], false, "{d}");
    let g = step("ad-groups");
    assert_eq!(g["outcome"], "restored", "{g}");
    assert_eq!(g["before"]["groups"].as_array().unwrap().len(), 2, "{g}");
    let p = step("ad-password");
    assert_eq!(p["outcome"], "not restorable", "{p}");
    assert!(
        p["not_restorable"]
            .as_str()
            .unwrap()
            .contains("old password"),
        "{p}"
    );
    let a = step("app-deactivate");
    assert_eq!(a["before"], json!({"active": true}), "{a}");
    assert_eq!(a["after"], json!({"active": true}), "{a}");
    assert_eq!(step("app-groups")["outcome"], "restored");
    // No secret reached the departure's files.
    for f in common::cli_env::walk(&env.departure_dir(&id)) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for secret in [SCIM_TOKEN, DIR_ADMIN_PW, old_pw] {
            assert!(!text.contains(secret), "a secret reached {}", f.display());
        }
    }
}
