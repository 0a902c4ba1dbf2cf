//! Builders, output extractors and a clocked [`Bench`] for the client suites.

use super::sid;
use ssesim_model::client::{
    AppNotice, Client, ClientInput, ClientOutput, ClientTimer, DropReason, PostOutcome,
};
use ssesim_model::params::ClientParams;
use ssesim_model::revisions;
use ssesim_model::types::{ConnId, EsId, Millis, ReqId, Seq};
use ssesim_model::wire::{
    ClientMsg, Endpoint, EventKind, Frame, ServerEvent, SessionCursor, SessionEvent,
};

// ─── Builders ──────────────────────────────────────────────────────────────────────────

/// The client parameters of a named preset.
pub fn rev(name: &str) -> ClientParams {
    revisions::preset(name)
        .unwrap_or_else(|| panic!("no preset {name}"))
        .client
}

/// The connection id the server hands out as its `n`th connection (boot 1).
pub fn conn(n: u32) -> ConnId {
    ConnId::new(1, n)
}

/// A `welcome` frame carrying connection `conn_n`, arriving on `es`.
pub fn welcome(es: EsId, conn_n: u32) -> ClientInput {
    on(
        es,
        Frame::of(ServerEvent::Welcome {
            connection_id: conn(conn_n),
            protocol_version: 2,
        }),
    )
}

/// Stored event `seq` of `session` (agent output `n`), whose previous event in the
/// session is `prev_seq`, as broadcast or replayed.
pub fn stored(session: &str, seq: Seq, prev_seq: Seq, n: u32) -> Frame {
    Frame::of(ServerEvent::Session(SessionEvent {
        seq,
        prev_seq,
        session: sid(session),
        kind: EventKind::AgentOutput { n },
    }))
}

/// `frame` arriving on `es`.
pub fn on(es: EsId, frame: Frame) -> ClientInput {
    ClientInput::Frame { es, frame }
}

/// A prompt `id` to `s1`.
pub fn prompt(id: &str) -> ClientMsg {
    ClientMsg::Send {
        session: Some(sid("s1")),
        client_msg_id: id.to_string(),
        text: format!("text of {id}"),
    }
}

pub fn send(msg: ClientMsg) -> ClientInput {
    ClientInput::Send { msg }
}

pub fn status(code: u16) -> PostOutcome {
    PostOutcome::Status {
        status: code,
        retry_after_s: None,
    }
}

pub fn ok() -> PostOutcome {
    status(200)
}

pub fn done(req: ReqId, outcome: PostOutcome) -> ClientInput {
    ClientInput::PostDone { req, outcome }
}

pub fn cursor(session: &str, last_seq: Seq) -> SessionCursor {
    SessionCursor {
        session: sid(session),
        last_seq,
    }
}

// ─── Output extractors ─────────────────────────────────────────────────────────────────

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    pub req: ReqId,
    pub endpoint: Endpoint,
    pub conn: ConnId,
    pub body: ClientMsg,
}

pub fn posts(out: &[ClientOutput]) -> Vec<Posted> {
    out.iter()
        .filter_map(|o| match o {
            ClientOutput::Post {
                req,
                endpoint,
                connection_id,
                body,
            } => Some(Posted {
                req: *req,
                endpoint: *endpoint,
                conn: *connection_id,
                body: body.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The bodies of the POSTs among the outputs, in order.
pub fn bodies(out: &[ClientOutput]) -> Vec<ClientMsg> {
    posts(out).into_iter().map(|p| p.body).collect()
}

pub fn only_post(out: &[ClientOutput]) -> Posted {
    let p = posts(out);
    assert_eq!(p.len(), 1, "expected exactly one POST in {out:?}");
    p[0].clone()
}

pub fn notices(out: &[ClientOutput]) -> Vec<AppNotice> {
    out.iter()
        .filter_map(|o| match o {
            ClientOutput::App(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

pub fn opened(out: &[ClientOutput]) -> Vec<EsId> {
    out.iter()
        .filter_map(|o| match o {
            ClientOutput::OpenStream { es } => Some(*es),
            _ => None,
        })
        .collect()
}

pub fn closed(out: &[ClientOutput]) -> Vec<EsId> {
    out.iter()
        .filter_map(|o| match o {
            ClientOutput::CloseStream { es } => Some(*es),
            _ => None,
        })
        .collect()
}

/// When each timer set in `out` fires: only `timer`'s, or every timer's with `None`.
pub fn timers_set(out: &[ClientOutput], timer: Option<ClientTimer>) -> Vec<Millis> {
    out.iter()
        .filter_map(|o| match o {
            ClientOutput::SetTimer { timer: t, at } if timer.is_none_or(|k| k == *t) => Some(*at),
            _ => None,
        })
        .collect()
}

pub fn dropped(out: &[ClientOutput]) -> Vec<(ClientMsg, DropReason)> {
    out.iter()
        .filter_map(|o| match o {
            ClientOutput::Dropped { msg, reason } => Some((msg.clone(), *reason)),
            _ => None,
        })
        .collect()
}

pub fn returned(out: &[ClientOutput]) -> Vec<bool> {
    out.iter()
        .filter_map(|o| match o {
            ClientOutput::SendReturned { accepted, .. } => Some(*accepted),
            _ => None,
        })
        .collect()
}

// ─── A client with a clock and a log ───────────────────────────────────────────────────

pub struct Bench {
    pub client: Client,
    pub now: Millis,
    /// How far the clock moves before each input (0: only when a test moves it).
    pub step: Millis,
    /// Every output so far, for "never" assertions.
    pub log: Vec<ClientOutput>,
}

impl Bench {
    pub fn new() -> Self {
        Bench::with(ClientParams::default())
    }

    pub fn with(params: ClientParams) -> Self {
        Bench {
            client: Client::new(params),
            now: 1_000,
            step: 0,
            log: Vec::new(),
        }
    }

    pub fn feed(&mut self, input: ClientInput) -> Vec<ClientOutput> {
        self.now += self.step;
        let out = self.client.handle(self.now, input);
        self.log.extend(out.iter().cloned());
        out
    }

    pub fn advance(&mut self, ms: Millis) {
        self.now += ms;
    }

    /// `connect()`: the one EventSource it opened.
    pub fn connect(&mut self) -> EsId {
        let out = self.feed(ClientInput::Connect);
        match out.as_slice() {
            [ClientOutput::OpenStream { es }] => *es,
            _ => panic!("connect opens one EventSource: {out:?}"),
        }
    }

    /// Connected on connection 1 by a first welcome with nothing queued or tracked.
    pub fn connected() -> (Bench, EsId) {
        Bench::connected_with(ClientParams::default())
    }

    /// [`Bench::connected`] with `params`.
    pub fn connected_with(params: ClientParams) -> (Bench, EsId) {
        let mut b = Bench::with(params);
        let es = b.connect();
        let out = b.feed(welcome(es, 1));
        assert_eq!(notices(&out), vec![AppNotice::Open]);
        assert!(b.client.is_connected());
        (b, es)
    }
}
