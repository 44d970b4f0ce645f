//! The route loops: one [`Worker`] per route, on its own thread (Out: read
//! the local object, publish; In: reopen the local object when needed, while
//! Zenoh's callback writes what arrives, [`InRoute`]).

use super::*;

/// One route: its thread, and for an In route Zenoh's callbacks too.
pub(crate) struct Worker {
    pub(crate) stop: Arc<AtomicBool>,
    /// The bridge's id, as stamped on what it publishes.
    pub(crate) id: [u8; 16],
    pub(crate) route: Route,
    pub(crate) shared: Arc<Mutex<RouteStats>>,
    pub(crate) st: RouteStats,
    /// Out: whether a subscriber matches, kept by Zenoh's matching listener.
    pub(crate) matching: Option<Arc<AtomicBool>>,
}

impl Worker {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn share(&mut self) {
        if let Some(m) = &self.matching {
            self.st.matched = Some(m.load(Ordering::Acquire));
        }
        lock(&self.shared).clone_from(&self.st);
    }

    fn set_state(&mut self, state: RouteState) {
        if self.st.state != state {
            self.st.state = state;
            self.share();
        }
    }

    /// Opens the local object with `open`, waiting while it is absent or
    /// unusable. `None` once the bridge is stopped.
    fn open<T>(
        &mut self,
        open: fn(&str, LocalKind) -> filemap::Result<T>,
    ) -> Option<(LocalKind, T)> {
        let name = self.route.local().to_owned();
        let name = name.as_str();
        loop {
            if self.stopped() {
                return None;
            }
            let why = match local::kind_of(name) {
                Ok(kind) => match open(name, kind) {
                    Ok(t) => {
                        self.st.kind = Some(kind);
                        self.st.backpressure = Some(self.backpressure(kind));
                        return Some((kind, t));
                    }
                    Err(filemap::Error::NotFound { .. }) => None,
                    Err(e) => Some(e.to_string()),
                },
                Err(why) => why,
            };
            let state = match why {
                None => RouteState::Waiting(format!("for `{name}` to exist")),
                Some(why) => {
                    self.st.last_error = Some(why.clone());
                    RouteState::Waiting(format!(": {why}"))
                }
            };
            self.set_state(state);
            std::thread::sleep(REOPEN_EVERY);
        }
    }

    fn backpressure(&self, kind: LocalKind) -> Backpressure {
        self.route
            .chosen_backpressure()
            .unwrap_or(Backpressure::default_for(kind))
    }

    fn reopening(&mut self, e: &filemap::Error) {
        self.st.reopened += 1;
        self.st.last_error = Some(e.to_string());
        self.set_state(RouteState::Reopening(format!(
            "`{}`: {e}",
            self.route.local()
        )));
    }

    pub(crate) fn run_out(mut self, session: &Session) -> Result<(), Error> {
        let origin = self.id;
        // Consecutive across reopenings of the local object: a receiver
        // counts a gap only for messages really skipped.
        let mut seq: u64 = 0;
        'open: loop {
            let Some((kind, mut source)) = self.open(Source::open) else {
                self.share();
                return Ok(());
            };
            let bp = self.backpressure(kind);
            let publisher = session
                .declare_publisher(self.route.key().to_owned())
                .congestion_control(match bp {
                    Backpressure::Block => CongestionControl::Block,
                    Backpressure::Drop => CongestionControl::Drop,
                })
                .allowed_destination(Locality::Remote)
                .wait()
                .map_err(zerr("cannot declare a publisher"))?;
            // Block mode loses nothing: while no subscriber matches, the
            // route does not read, and the producer fills the channel.
            let matching = Arc::new(AtomicBool::new(false));
            let _listener = {
                let m = matching.clone();
                let me = std::thread::current();
                publisher
                    .matching_listener()
                    .callback(move |s| {
                        m.store(s.matching(), Ordering::Release);
                        me.unpark();
                    })
                    .wait()
                    .map_err(zerr("cannot watch the publisher's subscribers"))?
            };
            let now = publisher
                .matching_status()
                .wait()
                .map_err(zerr("cannot read the publisher's subscribers"))?;
            matching.fetch_or(now.matching(), Ordering::AcqRel);
            self.matching = Some(matching.clone());
            self.set_state(RouteState::Running);
            let mut since_share = 0u64;
            loop {
                if self.stopped() {
                    self.share();
                    return Ok(());
                }
                if bp == Backpressure::Block && !matching.load(Ordering::Acquire) {
                    self.set_state(RouteState::Waiting(format!(
                        "for a subscriber on {}",
                        self.route.key()
                    )));
                    std::thread::park_timeout(SLICE);
                    continue;
                }
                let got = source.next(SLICE, self.route.poll, |skipped, bytes| {
                    let stamp = Stamp {
                        origin,
                        seq: seq.wrapping_add(skipped),
                    };
                    let len = bytes.len();
                    publisher
                        .put(bytes)
                        .attachment(stamp.encode())
                        .wait()
                        .map(|()| len)
                });
                match got {
                    Ok(Some((g, sent))) => {
                        let len = sent.map_err(zerr("cannot publish"))?;
                        seq = seq.wrapping_add(g.skipped).wrapping_add(1);
                        self.st.lost = self.st.lost.saturating_add(g.skipped);
                        self.st.messages += 1;
                        self.st.bytes = self.st.bytes.saturating_add(len as u64);
                        if self.st.state != RouteState::Running {
                            self.set_state(RouteState::Running);
                        }
                        since_share += 1;
                        if since_share >= SHARE_EVERY {
                            since_share = 0;
                            self.share();
                        }
                    }
                    Ok(None) => {
                        since_share = 0;
                        self.share();
                    }
                    Err(e) => {
                        // Its peer died, it was removed or damaged, or a
                        // read failed: start again from the name.
                        self.reopening(&e);
                        drop(source);
                        if !local::is_gone(&e) {
                            std::thread::sleep(REOPEN_EVERY);
                        }
                        continue 'open;
                    }
                }
            }
        }
    }

    pub(crate) fn run_in(mut self, session: &Session) -> Result<(), Error> {
        // The local object first: a publisher in block mode waits until this
        // route subscribes, that is until it can deliver.
        let Some((kind, sink)) = self.open(Sink::open) else {
            self.share();
            return Ok(());
        };
        let bp = self.backpressure(kind);
        self.set_state(RouteState::Running);
        let stop = self.stop.clone();
        let route = Arc::new(Mutex::new(InRoute {
            w: self,
            sink: Some(sink),
            bp,
            tracker: Tracker::default(),
            since_share: 0,
        }));
        // Samples are written into the local object from Zenoh's own thread,
        // without a queue and a thread between: in block mode a full channel
        // holds that thread, so Zenoh holds the publisher back.
        let key = lock_in(&route).w.route.key().to_owned();
        let sub = {
            let route = route.clone();
            session
                .declare_subscriber(key)
                .allowed_origin(Locality::Remote)
                .callback(move |sample| lock_in(&route).deliver(&sample))
                .wait()
                .map_err(zerr("cannot declare a subscriber"))?
        };
        while !stop.load(Ordering::Acquire) {
            std::thread::sleep(SLICE);
            lock_in(&route).share_origins();
        }
        sub.undeclare()
            .wait()
            .map_err(zerr("cannot undeclare the subscriber"))?;
        lock_in(&route).share_origins();
        Ok(())
    }
}

fn lock_in(m: &Mutex<InRoute>) -> MutexGuard<'_, InRoute> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An In route's state, shared by its thread and Zenoh's callbacks.
struct InRoute {
    w: Worker,
    sink: Option<Sink>,
    bp: Backpressure,
    tracker: Tracker,
    since_share: u64,
}

impl InRoute {
    /// Writes one sample into the local object (waiting for room in block
    /// mode, for the object to be back if it went away).
    fn deliver(&mut self, sample: &Sample) {
        let w = &mut self.w;
        if w.stopped() {
            return;
        }
        let stamp = sample
            .attachment()
            .and_then(|a| Stamp::decode(&a.to_bytes()));
        match stamp {
            Some(s) if s.origin == w.id => {
                w.st.echoes += 1;
                return;
            }
            Some(s) => {
                let gap = self.tracker.record(s);
                w.st.lost = w.st.lost.saturating_add(gap);
                w.st.resets = self.tracker.resets();
            }
            None => w.st.foreign += 1,
        }
        let payload = sample.payload().to_bytes();
        loop {
            let s = match &mut self.sink {
                Some(s) => s,
                None => match w.open(Sink::open) {
                    Some((_, s)) => {
                        w.set_state(RouteState::Running);
                        self.sink.insert(s)
                    }
                    None => return,
                },
            };
            match s.put(&payload, self.bp == Backpressure::Block) {
                Ok(Put::Done) => {
                    w.st.messages += 1;
                    w.st.bytes = w.st.bytes.saturating_add(payload.len() as u64);
                    break;
                }
                Ok(Put::Dropped) => {
                    w.st.dropped += 1;
                    break;
                }
                Ok(Put::Full) => {
                    if w.stopped() {
                        return;
                    }
                    w.share();
                }
                Err(e) if local::is_gone(&e) => {
                    // Keep the message; write it into the reopened one.
                    w.reopening(&e);
                    self.sink = None;
                }
                Err(e) => {
                    w.st.rejected += 1;
                    w.st.last_error = Some(e.to_string());
                    break;
                }
            }
        }
        self.since_share += 1;
        if self.since_share >= SHARE_EVERY {
            self.share_origins();
        }
    }

    fn share_origins(&mut self) {
        self.since_share = 0;
        let w = &mut self.w;
        w.st.origins = self
            .tracker
            .origins()
            .map(|(o, p)| OriginStats {
                origin: hex(o),
                first_seq: p.first_seq,
                last_seq: p.last_seq,
                received: p.received,
                lost: p.lost,
                out_of_order: p.out_of_order,
                resets: p.resets,
            })
            .collect();
        w.st.origins.sort_by(|a, b| a.origin.cmp(&b.origin));
        w.share();
    }
}
