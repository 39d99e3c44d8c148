//! The console at a million rows: one frame of each tab and the keystrokes a person makes,
//! timed on the state the console holds (no terminal, no I/O). The goal is the one a person
//! feels: every frame and every keystroke under 16 ms.
//!
//! `cargo bench --bench console` (optionally `-- --rows N --rounds R`).
use std::time::{Duration, Instant};

use m365sync::app::action::{Action, DirectorySnapshot};
use m365sync::app::{draw, fixtures, update, AppState};
use m365sync::keymap::Command;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tui_input::InputRequest;

fn stats(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// Times `f` on a fresh copy of `state` `rounds` times: best, median, worst.
fn keystroke(
    state: &AppState,
    rounds: usize,
    f: impl Fn(&mut AppState),
) -> (Duration, Duration, Duration) {
    stats(
        (0..rounds)
            .map(|_| {
                let mut s = state.clone();
                let t = Instant::now();
                f(&mut s);
                t.elapsed()
            })
            .collect(),
    )
}

fn frame(
    term: &mut Terminal<TestBackend>,
    s: &AppState,
    rounds: usize,
) -> (Duration, Duration, Duration) {
    stats(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                term.draw(|f| draw(f, s)).unwrap();
                t.elapsed()
            })
            .collect(),
    )
}

fn cmd(s: &mut AppState, c: Command) {
    update(s, Action::Command(c));
}

struct Report {
    worst_frame: Duration,
    worst_key: Duration,
}

impl Report {
    fn frame(&mut self, what: &str, t: (Duration, Duration, Duration)) {
        println!(
            "  frame  {what:<44} best {:>9.2?}  median {:>9.2?}  worst {:>9.2?}",
            t.0, t.1, t.2
        );
        self.worst_frame = self.worst_frame.max(t.1);
    }
    /// Work that is not a keystroke (an answer from the runtime), shown but not counted.
    fn other(&mut self, what: &str, t: (Duration, Duration, Duration)) {
        println!(
            "  other  {what:<44} best {:>9.2?}  median {:>9.2?}  worst {:>9.2?}",
            t.0, t.1, t.2
        );
    }
    fn key(&mut self, what: &str, t: (Duration, Duration, Duration)) {
        println!(
            "  key    {what:<44} best {:>9.2?}  median {:>9.2?}  worst {:>9.2?}",
            t.0, t.1, t.2
        );
        self.worst_key = self.worst_key.max(t.1);
    }
}

fn main() {
    let mut rows = 1_000_000usize;
    let mut rounds = 9usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rows" => rows = args.next().unwrap().parse().unwrap(),
            "--rounds" => rounds = args.next().unwrap().parse().unwrap(),
            _ => {} // cargo passes --bench
        }
    }
    let (w, h) = (120u16, 40u16);
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut r = Report {
        worst_frame: Duration::ZERO,
        worst_key: Duration::ZERO,
    };

    let t = Instant::now();
    let mut s = fixtures::loaded_state(rows);
    update(
        &mut s,
        Action::Resize {
            width: w,
            height: h,
        },
    );
    // A directory as big as the tenant, for the Bindings tab.
    update(
        &mut s,
        Action::DirectoryLoaded(Ok(DirectorySnapshot {
            users: fixtures::directory_users_with_wishes(rows),
            ..Default::default()
        })),
    );
    println!(
        "console at {} tenant users and {} directory users, {w}x{h}, {rounds} rounds (state built in {:.1?})",
        m365sync::format::thousands(rows),
        m365sync::format::thousands(rows),
        t.elapsed()
    );

    println!("\n== Import tab");
    r.frame("the list", frame(&mut term, &s, rounds));
    r.key(
        "j (next row)",
        keystroke(&s, rounds, |s| cmd(s, Command::Down)),
    );
    r.key(
        "G (last row)",
        keystroke(&s, rounds, |s| cmd(s, Command::Bottom)),
    );
    r.key("PgDn", keystroke(&s, rounds, |s| cmd(s, Command::PageDown)));
    r.key(
        "Space (mark, move)",
        keystroke(&s, rounds, |s| cmd(s, Command::ToggleMark)),
    );
    r.key(
        "a (mark every row shown)",
        keystroke(&s, rounds, |s| cmd(s, Command::MarkAll)),
    );
    r.key(
        "s (status filter: a full rescan)",
        keystroke(&s, rounds, |s| cmd(s, Command::CycleStatus)),
    );
    r.key(
        "> (sort by status: asked of the runtime)",
        keystroke(&s, rounds, |s| cmd(s, Command::SortNext)),
    );
    let mut by_status = s.clone();
    cmd(&mut by_status, Command::SortNext);
    r.key(
        "> again (sort by name: asked of the runtime)",
        keystroke(&by_status, rounds, |s| cmd(s, Command::SortNext)),
    );
    let t = Instant::now();
    let order = m365sync::app::tabs::import::sort_order(
        &s.data.rows.pages,
        &s.data.rows.status,
        m365sync::app::effect::SortKey::DisplayName,
    );
    println!(
        "         (the runtime's sort of {} names, off the UI thread: {:.2?})",
        m365sync::format::thousands(order.len()),
        t.elapsed()
    );
    let mut sorted = by_status.clone();
    cmd(&mut sorted, Command::SortNext);
    let gen = sorted.data.load_gen;
    r.other(
        "its answer applied (the list in name order)",
        keystroke(&sorted, rounds.min(3), |s| {
            update(
                s,
                Action::RowsSorted {
                    gen,
                    key: m365sync::app::effect::SortKey::DisplayName,
                    order: order.clone(),
                },
            );
        }),
    );
    let mut sorted_done = sorted.clone();
    update(
        &mut sorted_done,
        Action::RowsSorted {
            gen,
            key: m365sync::app::effect::SortKey::DisplayName,
            order: order.clone(),
        },
    );
    r.frame(
        "the list sorted by name",
        frame(&mut term, &sorted_done, rounds),
    );
    r.key(
        "Enter (the row's detail)",
        keystroke(&s, rounds, |s| cmd(s, Command::Open)),
    );
    let mut detail = s.clone();
    cmd(&mut detail, Command::Open);
    r.frame("the detail", frame(&mut term, &detail, rounds));

    println!("  filter: typing \"megan v\"");
    let mut typing = s.clone();
    cmd(&mut typing, Command::Filter);
    for c in "megan v".chars() {
        let a = Action::FilterInput(InputRequest::InsertChar(c));
        r.key(
            &format!("  {c:?}"),
            keystroke(&typing, rounds, |s| {
                update(s, a.clone());
            }),
        );
        update(&mut typing, a);
    }
    println!(
        "  -> {} rows shown",
        m365sync::format::thousands(typing.tabs.import.view.shown.len())
    );
    r.frame("the filtered list", frame(&mut term, &typing, rounds));
    r.key(
        "  Backspace (widens: a full rescan)",
        keystroke(&typing, rounds, |s| {
            update(s, Action::FilterInput(InputRequest::DeletePrevChar));
        }),
    );
    cmd(&mut typing, Command::FilterKeep);
    r.key(
        "  Esc (clears: a full rescan)",
        keystroke(&typing, rounds, |s| cmd(s, Command::Back)),
    );
    let mut searched = typing.clone();
    cmd(&mut searched, Command::Back);
    r.key(
        "  n (next row with the text, whole list)",
        keystroke(&searched, rounds, |s| cmd(s, Command::SearchNext)),
    );
    r.key(
        "  a paste of 40 characters into the filter",
        keystroke(&s, rounds, |s| {
            cmd(s, Command::Filter);
            update(
                s,
                Action::Paste("megan vance 1234567890 contoso.com x".into()),
            );
        }),
    );

    // What a paste costs, piece by piece.
    let hay = &s.data.rows.hay;
    for q in ["m", "megan v", "megan vance 1234567890 contoso.com x"] {
        let t = Instant::now();
        let n = m365sync::app::list::Needle::new(q);
        let hits = (0..hay.len()).filter(|&r| n.is_in(hay.get(r))).count();
        let needle = t.elapsed();
        let t = Instant::now();
        let hits2 = (0..hay.len()).filter(|&r| hay.get(r).contains(q)).count();
        println!(
            "         ({q:?} in every row: Needle {needle:.2?}, str::contains {:.2?}; {hits} = {hits2} rows)",
            t.elapsed()
        );
    }

    println!(
        "\n== Bindings tab ({} directory users)",
        m365sync::format::thousands(rows)
    );
    let mut b = s.clone();
    cmd(&mut b, Command::GoTab(2));
    r.frame("the list", frame(&mut term, &b, rounds));
    r.key(
        "Tab from Import",
        keystroke(&s, rounds, |s| cmd(s, Command::NextTab)),
    );
    r.key("j", keystroke(&b, rounds, |s| cmd(s, Command::Down)));
    r.key("G", keystroke(&b, rounds, |s| cmd(s, Command::Bottom)));
    r.key(
        "Space (toggle the wish)",
        keystroke(&b, rounds, |s| cmd(s, Command::ToggleWant)),
    );
    r.key(
        "v (mark)",
        keystroke(&b, rounds, |s| cmd(s, Command::MarkRow)),
    );
    r.key(
        "s (state filter: a full rescan)",
        keystroke(&b, rounds, |s| cmd(s, Command::CycleStatus)),
    );
    r.key(
        "/ then 'm' (filter)",
        keystroke(&b, rounds, |s| {
            cmd(s, Command::Filter);
            update(s, Action::FilterInput(InputRequest::InsertChar('m')));
        }),
    );
    // The directory read again after a wish was saved (not a keystroke): timed without
    // building the snapshot.
    let snap = DirectorySnapshot {
        users: b.data.directory.users.clone(),
        ..Default::default()
    };
    let times: Vec<Duration> = (0..rounds.min(3))
        .map(|_| {
            let mut s = b.clone();
            let a = Action::DirectoryLoaded(Ok(snap.clone()));
            let t = Instant::now();
            update(&mut s, a);
            t.elapsed()
        })
        .collect();
    r.other(
        "the directory read again (every user followed)",
        stats(times),
    );

    println!("\n== Errors tab");
    let mut e = fixtures::preflight_errors_state();
    update(
        &mut e,
        Action::Resize {
            width: w,
            height: h,
        },
    );
    r.frame("the list and the detail", frame(&mut term, &e, rounds));
    r.key("j", keystroke(&e, rounds, |s| cmd(s, Command::Down)));
    r.key(
        "J (scroll the detail)",
        keystroke(&e, rounds, |s| cmd(s, Command::DetailDown)),
    );

    println!(
        "\nworst median frame {:.2?}, worst median keystroke {:.2?} (goal: under 16 ms each)",
        r.worst_frame, r.worst_key
    );
}
