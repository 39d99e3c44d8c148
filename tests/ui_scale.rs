//! Scale: a 100k-row tenant. Prints the cost of one frame and of filter keystrokes; the
//! budget (well under 16 ms each) is for release builds, so the asserts here are loose enough
//! for a debug build and only catch work that grows with the tenant.
//!
//! Benchmarks build the same state: `m365sync::app::fixtures::loaded_state(100_000)`, then time
//! `terminal.draw(|f| m365sync::ui::draw(f, &state))` on a `TestBackend` and
//! `m365sync::app::update(&mut state, Action::FilterInput(InputRequest::InsertChar('x')))`.
use std::time::{Duration, Instant};

use m365sync::app::fixtures;
use m365sync::app::{update, Action};
use m365sync::keymap::Command;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tui_input::InputRequest;

fn best_of<F: FnMut()>(n: usize, mut f: F) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn one_frame_costs_the_same_for_1k_and_100k_rows() {
    let small = fixtures::loaded_state(1_000);
    let mut big = fixtures::loaded_state(100_000);
    update(&mut big, Action::Command(Command::Bottom));
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let d_small = best_of(20, || {
        t.draw(|f| m365sync::ui::draw(f, &small)).unwrap();
    });
    let d_big = best_of(20, || {
        t.draw(|f| m365sync::ui::draw(f, &big)).unwrap();
    });
    println!("draw 120x40: 1k rows {d_small:?}, 100k rows {d_big:?}");
    // O(screen): a frame of 100k rows is not much dearer than one of 1k.
    assert!(
        d_big < d_small * 4 + Duration::from_millis(5),
        "1k {d_small:?} vs 100k {d_big:?}"
    );
}

#[test]
fn filter_keystrokes_on_100k_rows() {
    let mut s = fixtures::loaded_state(100_000);
    update(&mut s, Action::Command(Command::Filter));
    let mut times = Vec::new();
    for c in "megan v".chars() {
        let t = Instant::now();
        update(&mut s, Action::FilterInput(InputRequest::InsertChar(c)));
        times.push((c, t.elapsed(), s.import.view.shown.len()));
    }
    for (c, d, n) in &times {
        println!("keystroke {c:?}: {d:?} -> {n} rows shown");
    }
    // "m" matches every row (the UPN domain has an m), "me" narrows 100k rows to 6,250:
    // from then on a keystroke scans only what the previous one kept, so it costs a
    // fraction of the 100k-row one. Best of 3 on clones, so a busy machine does not flake.
    assert_eq!(times[0].2, 100_000);
    let mut at_m = fixtures::loaded_state(100_000);
    update(&mut at_m, Action::Command(Command::Filter));
    update(
        &mut at_m,
        Action::FilterInput(InputRequest::InsertChar('m')),
    );
    let mut at_me = at_m.clone();
    update(
        &mut at_me,
        Action::FilterInput(InputRequest::InsertChar('e')),
    );
    let key = |state: &m365sync::app::AppState, c: char| {
        (0..3)
            .map(|_| {
                let mut s = state.clone();
                let t = Instant::now();
                update(&mut s, Action::FilterInput(InputRequest::InsertChar(c)));
                t.elapsed()
            })
            .min()
            .unwrap()
    };
    let wide = key(&at_m, 'e');
    let narrow = key(&at_me, 'g');
    println!("narrowing 100k rows: {wide:?}; narrowing 6,250 rows: {narrow:?}");
    assert!(
        narrow * 2 < wide + Duration::from_micros(300),
        "{narrow:?} vs {wide:?}"
    );
}
