//! `filemap top`: a live view of every object, with each channel's rate,
//! fill level (and its last minute) and stalled or dead ends.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{
    Block, Borders, Clear, Paragraph, Row as TableRow, Table, TableState, Wrap,
};
use ratatui::{DefaultTerminal, Frame};
use serde::Serialize;

use crate::error::{CliError, Result};
use crate::fmt::{self, human_size};
use crate::sample::{self, Row, Sample};

/// A live view of every object: channel rates, fill levels, stalled ends.
#[derive(clap::Args)]
#[command(
    after_help = "Keys: q or Ctrl-C quit, s sort (rate, fill, name), / filter, \
                  Enter detail (Esc closes), c clean stale objects (asks first), \
                  Up/Down select.\n\
                  Rows marked ! have a stalled receiver (messages queued, none taken \
                  since the last refresh), a dead receiving end, or a corrupt header.\n\n\
                  Examples:\n  filemap top\n  filemap top --interval 0.5 --sort fill --filter 'jobs*'\n  \
                  filemap top --once --json   # one sample, for scripts"
)]
pub struct Args {
    /// Refresh every SECONDS (fractions allowed).
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = fmt::parse_seconds)]
    interval: Duration,
    /// Order of the rows.
    #[arg(long, value_enum, default_value_t = SortBy::Rate)]
    sort: SortBy,
    /// Only names matching PATTERN (`*` and `?`; without them, a substring).
    #[arg(long, value_name = "PATTERN")]
    filter: Option<String>,
    /// Print one sample and exit: two readings INTERVAL apart, so that
    /// rates are known.
    #[arg(long)]
    once: bool,
    /// With --once: print JSON (schema in the README).
    #[arg(long, requires = "once")]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SortBy {
    /// Messages per second, highest first.
    Rate,
    /// Fill level, fullest first.
    Fill,
    /// Name.
    Name,
}

impl SortBy {
    fn next(self) -> SortBy {
        match self {
            SortBy::Rate => SortBy::Fill,
            SortBy::Fill => SortBy::Name,
            SortBy::Name => SortBy::Rate,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            SortBy::Rate => "rate",
            SortBy::Fill => "fill",
            SortBy::Name => "name",
        }
    }
}

/// What `top --once --json` prints.
#[derive(Serialize)]
struct Once {
    /// Seconds between the two readings.
    interval_s: f64,
    objects: Vec<Row>,
}

fn arrange(rows: &mut Vec<Row>, sort: SortBy, filter: Option<&str>) {
    if let Some(p) = filter {
        rows.retain(|r| sample::matches(p, &r.name));
    }
    let key = |r: &Row| match sort {
        SortBy::Rate => r.msgs_per_s.unwrap_or(-1.0),
        SortBy::Fill => r.fill.unwrap_or(-1.0),
        SortBy::Name => 0.0,
    };
    rows.sort_by(|a, b| key(b).total_cmp(&key(a)).then_with(|| a.name.cmp(&b.name)));
}

pub fn run(a: Args, out: &mut impl Write) -> Result {
    if a.once {
        let first = Sample::take()?;
        std::thread::sleep(a.interval);
        let second = Sample::take()?;
        let mut rows = sample::rows(Some(&first), &second);
        arrange(&mut rows, a.sort, a.filter.as_deref());
        if a.json {
            let once = Once {
                interval_s: (second.at - first.at).as_secs_f64(),
                objects: rows,
            };
            crate::output::write_json(out, &once)?;
        } else {
            let cells: Vec<[String; 8]> = rows.iter().map(cells).collect();
            fmt::table(
                out,
                &[
                    "NAME", "KIND", "SIZE", "HOLD", "MSG/S", "BYTES/S", "FILL", "QUEUED",
                ],
                &cells,
            )?;
        }
        return Ok(());
    }
    // Not a terminal: say so rather than draw into a pipe.
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(CliError::Usage(
            "`filemap top` draws on a terminal; for scripts use `filemap top --once --json`".into(),
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    // SIGTERM and SIGHUP (a closed SSH session) end the view cleanly too;
    // Ctrl-C arrives as a key in raw mode. A terminal that went away can
    // leave crossterm reading end-of-file in a loop that never returns to
    // ours: if the view has not ended shortly after the signal, the
    // terminal is put back and the process ends from here.
    ctrlc::set_handler(move || {
        on_signal.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(500));
        restore();
        std::process::exit(0);
    })
    .map_err(|e| CliError::Other(format!("cannot install the signal handler: {e}")))?;
    #[cfg(unix)]
    std::thread::spawn(watch_for_hangup);
    let (screen, mut terminal) = Screen::enter()?;
    let result = App::new(a)?.run(&mut terminal, &stop);
    drop(terminal);
    drop(screen);
    result
}

/// Ends the process when its terminal hangs up (no signal need come: a
/// killed tmux server or a dropped SSH session may leave crossterm reading
/// end-of-file in a loop that never returns to the view's).
#[cfg(unix)]
fn watch_for_hangup() {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let stdin = std::io::stdin();
    let every = Timespec {
        tv_sec: 0,
        tv_nsec: 250_000_000,
    };
    loop {
        // No events asked for: only a hang-up (or an error) is reported.
        let mut fds = [PollFd::new(&stdin, PollFlags::empty())];
        match poll(&mut fds, Some(&every)) {
            Ok(_)
                if fds[0]
                    .revents()
                    .intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) =>
            {
                restore();
                std::process::exit(0);
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The text cells of a row (for `--once` and the view).
fn cells(r: &Row) -> [String; 8] {
    let marked = if r.stalled || r.dead_end || r.status == Some("corrupt") {
        format!("!{}", r.name)
    } else {
        r.name.clone()
    };
    [
        marked,
        match r.status {
            Some("corrupt") => "corrupt".into(),
            _ => r.kind.unwrap_or("raw").to_owned(),
        },
        human_size(r.size),
        r.holders.map_or_else(|| "-".into(), |n| n.to_string()),
        r.msgs_per_s.map_or_else(|| "-".into(), per_second),
        r.bytes_per_s
            .map_or_else(|| "-".into(), |b| format!("{}/s", human_size(b as u64))),
        r.fill
            .map_or_else(|| "-".into(), |f| format!("{:.0}%", f * 100.0)),
        r.queued.map_or_else(|| "-".into(), |q| q.to_string()),
    ]
}

/// `12`, `1.5k`, `2.3M`.
fn per_second(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e4 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

/// The terminal in raw mode on the alternate screen, with the cursor
/// hidden; put back on drop, and by the panic hook on a panic.
struct Screen;

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(std::io::stdout(), LeaveAlternateScreen, cursor::Show);
}

impl Screen {
    fn enter() -> Result<(Screen, DefaultTerminal)> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode()?;
        let screen = Screen;
        execute!(std::io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        let terminal =
            ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
        Ok((screen, terminal))
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

enum Mode {
    Normal,
    /// Typing a filter.
    Filter(String),
    /// An object's `info`.
    Detail(String, String),
    /// Asking whether to remove these stale objects.
    Confirm(Vec<String>),
}

struct App {
    args: Args,
    last: Sample,
    rows: Vec<Row>,
    /// Fill levels of the last minute, per name.
    history: HashMap<String, VecDeque<f64>>,
    table: TableState,
    mode: Mode,
    status: String,
}

impl App {
    fn new(args: Args) -> Result<App> {
        let last = Sample::take()?;
        let mut app = App {
            args,
            rows: Vec::new(),
            last,
            history: HashMap::new(),
            table: TableState::default().with_selected(Some(0)),
            mode: Mode::Normal,
            status: String::new(),
        };
        app.rows = sample::rows(None, &app.last);
        app.arrange();
        Ok(app)
    }

    fn arrange(&mut self) {
        arrange(&mut self.rows, self.args.sort, self.args.filter.as_deref());
    }

    /// A new reading: rates against the last one, a point of history.
    fn refresh(&mut self) -> Result {
        let now = Sample::take()?;
        self.rows = sample::rows(Some(&self.last), &now);
        let keep = (60.0 / self.args.interval.as_secs_f64())
            .ceil()
            .clamp(2.0, 600.0) as usize;
        self.history
            .retain(|name, _| now.objects.iter().any(|o| &o.name == name));
        for r in &self.rows {
            let h = self.history.entry(r.name.clone()).or_default();
            h.push_back(r.fill.unwrap_or(0.0));
            while h.len() > keep {
                h.pop_front();
            }
        }
        self.last = now;
        self.arrange();
        Ok(())
    }

    fn run(mut self, terminal: &mut DefaultTerminal, stop: &AtomicBool) -> Result {
        let mut next = Instant::now() + self.args.interval;
        // The tests' way to prove that a panic restores the terminal.
        let panic_after_draw = std::env::var_os("FILEMAP_TOP_TEST_PANIC").is_some();
        loop {
            terminal.draw(|f| self.draw(f))?;
            if panic_after_draw {
                panic!("FILEMAP_TOP_TEST_PANIC is set: panicking after the first draw");
            }
            let wait = next
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            if event::poll(wait)? {
                if let Event::Key(k) = event::read()? {
                    if k.kind == KeyEventKind::Press && self.key(k)? {
                        return Ok(());
                    }
                }
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if Instant::now() >= next {
                self.refresh()?;
                next += self.args.interval;
                if next < Instant::now() {
                    next = Instant::now() + self.args.interval;
                }
            }
        }
    }

    /// Handles a key; true to quit.
    fn key(&mut self, k: KeyEvent) -> Result<bool> {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            return Ok(true);
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Filter(mut text) => match k.code {
                KeyCode::Enter => {
                    self.args.filter = (!text.is_empty()).then_some(text);
                    self.rows = sample::rows(None, &self.last);
                    self.arrange();
                }
                KeyCode::Esc => {}
                KeyCode::Backspace => {
                    text.pop();
                    self.mode = Mode::Filter(text);
                }
                KeyCode::Char(c) => {
                    text.push(c);
                    self.mode = Mode::Filter(text);
                }
                _ => self.mode = Mode::Filter(text),
            },
            Mode::Detail(..) => {}
            Mode::Confirm(names) => {
                if matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                    self.status = clean(&names);
                    self.refresh()?;
                } else {
                    self.status = "clean cancelled".into();
                }
            }
            Mode::Normal => match k.code {
                KeyCode::Char('q') | KeyCode::Esc => return Ok(true),
                KeyCode::Char('s') => {
                    self.args.sort = self.args.sort.next();
                    self.arrange();
                }
                KeyCode::Char('/') => {
                    self.mode = Mode::Filter(self.args.filter.clone().unwrap_or_default())
                }
                KeyCode::Up => self.table.select_previous(),
                KeyCode::Down => self.table.select_next(),
                KeyCode::Enter | KeyCode::Char('i') => {
                    if let Some(r) = self.table.selected().and_then(|i| self.rows.get(i)) {
                        let text = self
                            .last
                            .objects
                            .iter()
                            .find(|o| o.name == r.name)
                            .map(|o| {
                                let mut buf = Vec::new();
                                let _ = o.write_text(&mut buf);
                                String::from_utf8_lossy(&buf).into_owned()
                            })
                            .unwrap_or_else(|| "gone".into());
                        self.mode = Mode::Detail(r.name.clone(), text);
                    }
                }
                KeyCode::Char('c') => {
                    let stale: Vec<String> = self
                        .rows
                        .iter()
                        .filter(|r| r.state == Some("stale"))
                        .map(|r| r.name.clone())
                        .collect();
                    if stale.is_empty() {
                        self.status = "no stale objects to clean".into();
                    } else {
                        self.mode = Mode::Confirm(stale);
                    }
                }
                _ => {}
            },
        }
        Ok(false)
    }

    fn draw(&mut self, f: &mut Frame) {
        let [head, body, foot] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let title = format!(
            "filemap top: {} object{}, every {} s, sort {}, filter {}",
            self.rows.len(),
            if self.rows.len() == 1 { "" } else { "s" },
            self.args.interval.as_secs_f64(),
            self.args.sort.as_str(),
            self.args.filter.as_deref().unwrap_or("none"),
        );
        f.render_widget(
            Paragraph::new(title).style(Style::new().add_modifier(Modifier::BOLD)),
            head,
        );
        // NAME gets what the fixed columns leave, the sparkline the rest.
        // The fixed columns and the gaps between the eight.
        let fixed = 7 + 9 + 4 + 7 + 9 + 4 + 7;
        let longest = self
            .rows
            .iter()
            .map(|r| r.name.chars().count() + 1)
            .max()
            .unwrap_or(0)
            .max(14);
        let spark = usize::from(body.width)
            .saturating_sub(fixed + longest)
            .clamp(4, 60);
        let widths = [
            Constraint::Min(14),
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Length(4),
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Length(4),
            Constraint::Length(spark as u16),
        ];
        let rows: Vec<TableRow> = self
            .rows
            .iter()
            .map(|r| {
                let c = cells(r);
                let line = self
                    .history
                    .get(&r.name)
                    .map(|h| sparkline(h, spark))
                    .unwrap_or_default();
                let style = if r.dead_end || r.status == Some("corrupt") {
                    Style::new().fg(Color::Red)
                } else if r.stalled {
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                };
                TableRow::new([
                    c[0].clone(),
                    c[1].clone(),
                    c[2].clone(),
                    c[3].clone(),
                    c[4].clone(),
                    c[5].clone(),
                    c[6].clone(),
                    line,
                ])
                .style(style)
            })
            .collect();
        let table = Table::new(rows, widths)
            .header(
                TableRow::new([
                    "NAME",
                    "KIND",
                    "SIZE",
                    "HOLD",
                    "MSG/S",
                    "BYTES/S",
                    "FILL",
                    "LAST MINUTE",
                ])
                .style(Style::new().add_modifier(Modifier::REVERSED)),
            )
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        f.render_stateful_widget(table, body, &mut self.table);
        let footer = match &self.mode {
            Mode::Filter(t) => format!("filter (* ? or text, Enter applies, Esc cancels): {t}"),
            Mode::Confirm(names) => format!(
                "remove {} stale object{} ({})? y/n",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            ),
            _ if !self.status.is_empty() => self.status.clone(),
            _ => "q quit  s sort  / filter  Enter detail  c clean  ! stalled/dead/corrupt".into(),
        };
        f.render_widget(Paragraph::new(footer), foot);
        if let Mode::Detail(name, text) = &self.mode {
            let area = centered(f.area(), 90, 80);
            f.render_widget(Clear, area);
            f.render_widget(
                Paragraph::new(text.as_str())
                    .wrap(Wrap { trim: false })
                    .block(
                        Block::new()
                            .borders(Borders::ALL)
                            .title(Line::from(format!(" {name} (any key closes) "))),
                    ),
                area,
            );
        }
    }
}

/// `pct_w`% by `pct_h`% of `r`, centred.
fn centered(r: Rect, pct_w: u16, pct_h: u16) -> Rect {
    let w = r.width * pct_w / 100;
    let h = r.height * pct_h / 100;
    Rect::new(r.x + (r.width - w) / 2, r.y + (r.height - h) / 2, w, h)
}

/// The last `width` fill levels (0 to 1) as block characters.
fn sparkline(h: &VecDeque<f64>, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let skip = h.len().saturating_sub(width);
    h.iter()
        .skip(skip)
        .map(|&f| BARS[((f.clamp(0.0, 1.0) * 7.0).round()) as usize])
        .collect()
}

/// Removes the stale objects `names` (each checked again first).
fn clean(names: &[String]) -> String {
    #[cfg(target_os = "linux")]
    {
        let mut removed = 0;
        for n in names {
            if let Ok(filemap::inspect::Cleaned::Removed) = filemap::inspect::remove_if_stale(n) {
                removed += 1;
            }
        }
        format!("removed {removed} of {} stale objects", names.len())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = names;
        "nothing to clean on this OS".into()
    }
}
