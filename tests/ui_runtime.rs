//! The loop itself, on a TestBackend with scripted key events: keys reach `update`, actions
//! from effects are applied, bursts are coalesced into few frames, `q` ends the loop.
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use futures::StreamExt;
use m365sync::app::fixtures;
use m365sync::app::runtime::{run, Services};
use m365sync::app::state::Phase;
use m365sync::app::{Action, AppState};
use m365sync::config::Settings;
use m365sync::directory::ImportStatus;
use m365sync::keymap::Command;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn settings() -> Settings {
    Settings {
        authority: "http://127.0.0.1:9".into(),
        graph_url: "http://127.0.0.1:9/v1.0".into(),
        tenant: None,
        client_id: None,
        ca_file: None,
        service_account: None,
        data_dir: std::env::temp_dir().join("m365sync-ui-runtime-test"),
    }
}

fn keys(codes: &[KeyCode]) -> impl futures::Stream<Item = std::io::Result<Event>> + Unpin {
    let evs: Vec<std::io::Result<Event>> = codes
        .iter()
        .map(|c| Ok(Event::Key(KeyEvent::new(*c, KeyModifiers::NONE))))
        .collect();
    // Typed at a human pace (so frames are drawn between keys); then the terminal stays quiet.
    futures::stream::iter(evs)
        .then(|e| async {
            tokio::time::sleep(Duration::from_millis(15)).await;
            e
        })
        .chain(futures::stream::pending())
        .boxed()
}

fn screen(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn drive(
    state: AppState,
    script: &[KeyCode],
    queued: Vec<Action>,
) -> (AppState, Terminal<TestBackend>) {
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for a in queued {
        tx.send(a).unwrap();
    }
    let services = Services::new(settings(), None, tx.clone());
    let end = tokio::time::timeout(
        Duration::from_secs(10),
        run(&mut t, state, services, rx, keys(script), Vec::new()),
    )
    .await
    .expect("the loop ends on q")
    .unwrap();
    (end, t)
}

#[tokio::test]
async fn keys_drive_update_and_q_quits() {
    let state = fixtures::loaded_state(200);
    let script = [
        KeyCode::Char('j'),
        KeyCode::Char('j'),
        KeyCode::Char(' '),
        KeyCode::Char('/'),
        KeyCode::Char('m'),
        KeyCode::Char('e'),
        KeyCode::Char('g'),
        KeyCode::Enter,
        KeyCode::Char('q'),
    ];
    let (end, t) = drive(state, &script, Vec::new()).await;
    assert!(end.data.quit);
    assert_eq!(
        end.tabs.import.view.input.value(),
        "meg",
        "letters after / are text, not commands"
    );
    assert!(!end.tabs.import.view.editing);
    assert!(end.tabs.import.marks.contains(2));
    assert!(screen(&t).contains("/ meg"), "{}", screen(&t));
}

#[tokio::test]
async fn the_not_set_up_screen_quits_with_q() {
    let mut state = AppState::new("");
    state.data.phase = Phase::Config {
        message: "no tenant configured".into(),
    };
    let (end, t) = drive(state, &[KeyCode::Char('q')], Vec::new()).await;
    assert!(end.data.quit);
    assert!(screen(&t).contains("no tenant configured"));
}

#[tokio::test]
async fn a_burst_of_pages_is_drawn_in_a_few_frames() {
    let mut state = fixtures::loaded_state(0);
    state.data.load = m365sync::app::state::Load::Loading { pages: 0 };
    let gen = state.data.load_gen;
    let mut queued: Vec<Action> = (0..300)
        .map(|p| Action::UsersPage {
            gen,
            index_version: state.data.index_version,
            users: vec![fixtures::tenant_user(p)],
            statuses: vec![ImportStatus::New],
        })
        .collect();
    queued.push(Action::UsersDone { gen });
    queued.push(Action::Command(Command::Quit));
    let (end, mut t) = drive(state, &[], queued).await;
    assert_eq!(end.data.rows.len(), 300);
    let frames = t.get_frame().count();
    assert!(frames <= 5, "300 pages took {frames} frames");
}

/// A clipboard sink the test can read after the loop owned it.
#[derive(Clone, Default)]
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn c_copies_the_selected_password_with_osc52_outside_drawing() {
    use base64::Engine as _;
    let state = fixtures::passwords_state();
    let sink = Sink::default();
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let services =
        Services::new(settings(), None, tx.clone()).with_clipboard(Box::new(sink.clone()));
    // Copy the second password; Esc asks (two were neither copied nor written), y forgets
    // them; q quits.
    let script = [
        KeyCode::Char('j'),
        KeyCode::Char('c'),
        KeyCode::Esc,
        KeyCode::Char('y'),
        KeyCode::Char('q'),
    ];
    let end = tokio::time::timeout(
        Duration::from_secs(10),
        run(&mut t, state, services, rx, keys(&script), Vec::new()),
    )
    .await
    .expect("the loop ends on q")
    .unwrap();
    let written = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(fixtures::issued_password(10).password.as_bytes());
    assert_eq!(written, format!("\x1b]52;c;{b64}\x07"));
    // Esc, then y, closed the panel: the passwords are gone from the state.
    assert_eq!(end.modal, m365sync::app::state::Modal::None);
    assert!(!format!("{:?}", end.modal).contains("Kq7#"));
}

#[test]
fn the_handoff_csv_is_owner_only_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let pw = vec![fixtures::issued_password(2), fixtures::issued_password(10)];
    let path = m365sync::app::runtime::write_handoff(dir.path(), &pw).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("email,userPrincipalName,temporaryPassword\n"));
    assert!(text.contains(&pw[1].password));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let again = m365sync::app::runtime::write_handoff(dir.path(), &pw[..1]).unwrap();
    assert_ne!(again, path, "a second hand-off gets its own file");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

/// The loop turns a terminal's paste into one `Paste` (a newline in it is no Enter, its
/// letters no commands) and the wheel and a click into `Mouse` actions.
#[tokio::test]
async fn pastes_and_the_mouse_reach_update_as_such() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let state = fixtures::loaded_state(200);
    let key = |c| Ok(Event::Key(KeyEvent::new(c, KeyModifiers::NONE)));
    let mouse = |kind, row| {
        Ok(Event::Mouse(MouseEvent {
            kind,
            column: 10,
            row,
            modifiers: KeyModifiers::NONE,
        }))
    };
    let evs: Vec<std::io::Result<Event>> = vec![
        mouse(MouseEventKind::ScrollDown, 10),
        mouse(MouseEventKind::Down(MouseButton::Left), 9),
        key(KeyCode::Char('/')),
        Ok(Event::Paste("meg\nai".into())),
        key(KeyCode::Enter),
        key(KeyCode::Char('q')),
    ];
    let events = futures::stream::iter(evs)
        .then(|e| async {
            tokio::time::sleep(Duration::from_millis(15)).await;
            e
        })
        .chain(futures::stream::pending())
        .boxed();
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let services = Services::new(settings(), None, tx.clone());
    let end = tokio::time::timeout(
        Duration::from_secs(10),
        run(&mut t, state, services, rx, events, Vec::new()),
    )
    .await
    .expect("the loop ends on q")
    .unwrap();
    assert!(end.data.quit);
    assert_eq!(end.tabs.import.view.input.value(), "meg ai");
    assert!(end.tabs.import.marks.is_empty(), "a did not mark");
    assert!(end.data.importing.is_none(), "i did not import");
}
