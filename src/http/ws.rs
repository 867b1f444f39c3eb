//! `GET /ws`: live feeds. A session actor per connection registers with the feed hub,
//! answers the client's subscribe/unsubscribe/ping messages, keeps a heartbeat, and
//! writes frames into a bounded queue that the connection drains as fast as the client
//! reads. A client that falls behind gets a `lagged` message and is disconnected: it
//! never slows the engine.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_codec::{Decoder, Encoder};
use actix_http::ws::Codec;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, CloseCode, CloseReason, Frame, ProtocolError};
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::auth::Caller;
use super::error::ApiError;
use super::AppState;
use crate::actors::feed::{
    Channel, Connect, Deliver, Disconnect, EngineStopping, FeedHub, Lagged, Subscribe, Unsubscribe,
};
use crate::actors::keys::KeyRing;
use crate::domain::{BankCode, KeyId};
use crate::metrics::Metrics;
use crate::views;

/// How often the server pings, and how long a silent client is kept.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds of the WebSocket edge.
#[derive(Clone, Copy, Debug)]
pub struct WsLimits {
    /// Largest frame a client may send.
    pub frame_size_max: usize,
    /// Frames queued for one client before it counts as lagging.
    pub queue_max: usize,
    /// Sessions open at once; beyond it `/ws` answers 503.
    pub sessions_max: usize,
}

/// How often a session checks that its key is still valid: a revoked key's sessions
/// close within this.
const KEY_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Most frames a client may send a second; beyond it they are answered
/// `rate_limited` and dropped, so one client cannot keep the feed hub busy for all.
const CLIENT_FRAMES_PER_SECOND_MAX: u32 = 50;

/// Deliveries a session may have waiting in its mailbox (it forwards them at once).
const SESSION_MAILBOX_CAPACITY: usize = 1024;

/// Per-process session ids.
static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

/// Live feeds over a WebSocket.
///
/// Open it with a key: `Authorization: Bearer <key>`, or `?token=<key>` (browsers
/// cannot set headers on a WebSocket). The client sends JSON text frames:
///
/// - `{"type":"subscribe","channels":[…],"bank":"ICICI"}`: channels among
///   `transactions`, `windows`, `settlements`, `positions`, `notifications`;
///   `bank` is optional and limits the feed to what concerns that bank (a bank
///   key always hears its own bank only; naming another gets `bank_not_principal`).
/// - `{"type":"unsubscribe","channels":[…]}` and `{"type":"ping"}`.
///
/// Every server message is `{"type":…,"channel":…,"seq":n,"timestamp":…,"data":{…}}`,
/// `seq` counting the connection's messages from 1. A subscription is acknowledged
/// as `subscribed` on channel `control`; a bad message gets an `error` (codes
/// `invalid_json`, `type_missing`, `unknown_type`, `channels_missing`,
/// `unknown_channel`, `bank_code_invalid`, `bank_not_principal`, `rate_limited`)
/// and the connection stays open.
///
/// Message types by channel: `transactions`: `transaction` (data as
/// `GET /api/v1/transfers/{id}`), once committed. `windows`: `window_closing`
/// (`id`, `next_window_id`), `window_opened` (`id`), `window_netted` (data as
/// `GET /api/v1/windows/{id}`, a bank's own positions only on a bank-limited
/// session), `window_settled` (`id`, `state`). `settlements`: `instruction_created`,
/// `instruction_confirmed`, `instruction_failed` (data as
/// `GET /api/v1/settlements/{id}`). `positions`: `position` (data as
/// `GET /api/v1/banks/{code}/positions`), at most 4 a second per bank, the latest
/// wins. `notifications`: `limit_warning` (`bank`, `currency`, `exposure`,
/// `net_debit_cap`, `limit`: exposure above 80 % of the limit, the cap or a prefunded
/// bank's balance where lower), `balance_changed`, `bank_suspended`,
/// `bank_activated`, `corridor_suspended`, `corridor_activated` (the record),
/// `actor_restarted` (`actor`, `name`).
///
/// The server pings every 5 s and closes a connection silent for 10 s. A client
/// may send 50 frames a second (beyond: one `rate_limited` error, the rest
/// dropped) and frames up to the configured frame size. Frames wait in a bounded
/// queue per client: one that does not read fast enough gets
/// `{"type":"lagged","data":{"missed":n,…}}` and is closed; it never slows the
/// engine. A revoked key's sessions close within a second; at shutdown every
/// session gets close code 1001.
#[utoipa::path(get, path = "/ws", tag = "feeds",
    responses(
        (status = 101, description = "Switched to the WebSocket protocol"),
        (status = 400, description = "Problem code: `field_invalid` (not a WebSocket handshake)"),
        (status = 503, description = "Problem code: `overloaded` (at the limit of WebSocket sessions)"),
    ))]
pub async fn connect(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let limits = state.ws_limits;
    if state.ws_open.fetch_add(1, Ordering::AcqRel) >= limits.sessions_max {
        state.ws_open.fetch_sub(1, Ordering::AcqRel);
        return Err(ApiError::Overloaded(
            "the engine is at its limit of WebSocket sessions",
        ));
    }
    let mut response = match ws::handshake(&req) {
        Ok(response) => response,
        Err(e) => {
            state.ws_open.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::FieldInvalid(format!(
                "not a WebSocket handshake: {e}"
            )));
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(limits.queue_max);
    let session = WsSession {
        id: NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed),
        hub: state.engine.feed.hub.clone(),
        metrics: state.metrics.clone(),
        open: state.ws_open.clone(),
        tx,
        codec: Codec::new(),
        seq: 0,
        last_heard: Instant::now(),
        channels: Vec::new(),
        bank: caller.0.only_bank().cloned(),
        own_bank: caller.0.only_bank().cloned(),
        key_id: caller.0.key_id,
        keys: state.engine.keys.clone(),
        key_revoked: false,
        frames_in_second: 0,
        second_started: Instant::now(),
        missed: None,
    };
    let frames = decode(payload, Codec::new().max_size(limits.frame_size_max));
    WsSession::create(move |ctx| {
        ctx.add_stream(frames);
        session
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|frame| (Ok::<_, actix_web::Error>(frame), rx))
    });
    Ok(response.streaming(body))
}

/// The client's frames, decoded from the request body.
fn decode(payload: web::Payload, codec: Codec) -> impl Stream<Item = Result<Frame, ProtocolError>> {
    futures_util::stream::unfold(
        (payload, codec, BytesMut::new(), false),
        |(mut payload, mut codec, mut buf, failed)| async move {
            if failed {
                return None;
            }
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(frame)) => return Some((Ok(frame), (payload, codec, buf, false))),
                    Ok(None) => {}
                    Err(e) => return Some((Err(e), (payload, codec, buf, true))),
                }
                match payload.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    _ => return None,
                }
            }
        },
    )
}

pub struct WsSession {
    id: u64,
    hub: Addr<FeedHub>,
    metrics: Arc<Metrics>,
    open: Arc<AtomicUsize>,
    tx: mpsc::Sender<Bytes>,
    codec: Codec,
    seq: u64,
    last_heard: Instant,
    channels: Vec<Channel>,
    /// Only what concerns this bank is delivered (the subscription's `bank`).
    bank: Option<BankCode>,
    /// For a bank's key, its bank: the session hears only that bank, whatever it
    /// subscribes to.
    own_bank: Option<BankCode>,
    /// The key the session was opened with: revoking it ends the session.
    key_id: KeyId,
    keys: Arc<KeyRing>,
    key_revoked: bool,
    /// Client frames in the current second (bounded by CLIENT_FRAMES_PER_SECOND_MAX).
    frames_in_second: u32,
    second_started: Instant,
    /// Set once the client fell behind: messages dropped since.
    missed: Option<u64>,
}

impl WsSession {
    fn encode(&mut self, message: ws::Message) -> Bytes {
        let mut buf = BytesMut::new();
        // Encoding a server frame into memory cannot fail.
        let _ = self.codec.encode(message, &mut buf);
        buf.freeze()
    }

    /// The next message of this connection as a text frame: `data` (JSON text) in the
    /// envelope every server message has.
    fn envelope(&mut self, kind: &str, channel: &str, data: &str) -> Bytes {
        self.seq += 1;
        let text = format!(
            r#"{{"type":"{kind}","channel":"{channel}","seq":{},"timestamp":"{}","data":{data}}}"#,
            self.seq,
            views::timestamp(&chrono::Utc::now()),
        );
        self.encode(ws::Message::Text(text.into()))
    }

    /// Queues one JSON message; a full queue makes the session lag.
    fn send(&mut self, kind: &str, channel: &str, data: &str, ctx: &mut Context<Self>) {
        if let Some(missed) = self.missed.as_mut() {
            *missed += 1;
            return;
        }
        let frame = self.envelope(kind, channel, data);
        if self.tx.try_send(frame).is_err() {
            self.lag(1, ctx);
        }
    }

    fn control(&mut self, kind: &str, data: Value, ctx: &mut Context<Self>) {
        self.send(kind, "control", &data.to_string(), ctx);
    }

    fn error(&mut self, code: &str, message: String, ctx: &mut Context<Self>) {
        self.control("error", json!({"code": code, "message": message}), ctx);
    }

    /// The client fell behind: stop listening, then — once it has read enough to make
    /// room — tell it how much it missed, and close.
    fn lag(&mut self, missed: u64, ctx: &mut Context<Self>) {
        if self.missed.is_some() {
            return;
        }
        self.missed = Some(missed);
        self.metrics.ws_lagged_disconnects.inc();
        self.hub.do_send(Disconnect { id: self.id });
        let tx = self.tx.clone();
        let wait = async move { tx.reserve_owned().await.ok() };
        ctx.spawn(wait.into_actor(self).map(|permit, act, ctx| {
            if let Some(permit) = permit {
                let data = json!({"missed": act.missed.unwrap_or_default(),
                                  "reason": "the client did not read fast enough"});
                permit.send(act.envelope("lagged", "control", &data.to_string()));
                act.close(Some(CloseReason::from((CloseCode::Policy, "lagged"))), ctx);
            } else {
                ctx.stop();
            }
        }));
    }

    fn close(&mut self, reason: Option<CloseReason>, ctx: &mut Context<Self>) {
        let frame = self.encode(ws::Message::Close(reason));
        let tx = self.tx.clone();
        let send = async move {
            let _ = tx.send(frame).await;
        };
        ctx.spawn(send.into_actor(self).map(|_, _, ctx| ctx.stop()));
    }

    /// Counts a client message; past `CLIENT_FRAMES_PER_SECOND_MAX` in a second the
    /// client is told once and the rest of that second's messages are dropped.
    fn within_frame_rate(&mut self, ctx: &mut Context<Self>) -> bool {
        if self.second_started.elapsed() >= Duration::from_secs(1) {
            self.second_started = Instant::now();
            self.frames_in_second = 0;
        }
        self.frames_in_second += 1;
        if self.frames_in_second == CLIENT_FRAMES_PER_SECOND_MAX + 1 {
            self.error(
                "rate_limited",
                format!("at most {CLIENT_FRAMES_PER_SECOND_MAX} messages a second"),
                ctx,
            );
        }
        self.frames_in_second <= CLIENT_FRAMES_PER_SECOND_MAX
    }

    fn client_message(&mut self, text: &str, ctx: &mut Context<Self>) {
        let message: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return self.error("invalid_json", e.to_string(), ctx),
        };
        let kind = message["type"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "ping" => self.control("pong", json!({}), ctx),
            "subscribe" | "unsubscribe" => {
                let Some(names) = message["channels"].as_array() else {
                    return self.error(
                        "channels_missing",
                        "channels must be a list of channel names".into(),
                        ctx,
                    );
                };
                let mut channels = Vec::new();
                for name in names {
                    match name.as_str().and_then(Channel::parse) {
                        Some(channel) => channels.push(channel),
                        None => {
                            return self.error(
                                "unknown_channel",
                                format!(
                                    "{name} is not a channel (transactions, windows, settlements, positions, notifications)"
                                ),
                                ctx,
                            )
                        }
                    }
                }
                if kind == "subscribe" {
                    let asked = match message["bank"].as_str() {
                        None => None,
                        Some(code) => match BankCode::parse(code) {
                            Ok(bank) => Some(bank),
                            Err(e) => return self.error(e.code(), e.to_string(), ctx),
                        },
                    };
                    let bank = match (&self.own_bank, asked) {
                        (None, asked) => asked,
                        (Some(own), None) => Some(own.clone()),
                        (Some(own), Some(asked)) if &asked == own => Some(asked),
                        (Some(own), Some(_)) => {
                            return self.error(
                                "bank_not_principal",
                                format!("this key hears only bank {own}"),
                                ctx,
                            )
                        }
                    };
                    for c in &channels {
                        if !self.channels.contains(c) {
                            self.channels.push(*c);
                        }
                    }
                    self.bank = bank.clone();
                    self.hub.do_send(Subscribe {
                        id: self.id,
                        channels,
                        bank,
                    });
                    self.acknowledge("subscribed", ctx);
                } else {
                    self.channels.retain(|c| !channels.contains(c));
                    self.hub.do_send(Unsubscribe {
                        id: self.id,
                        channels,
                    });
                    self.acknowledge("unsubscribed", ctx);
                }
            }
            "" => self.error("type_missing", "a message needs a type".into(), ctx),
            other => self.error(
                "unknown_type",
                format!("{other} is not a message type (subscribe, unsubscribe, ping)"),
                ctx,
            ),
        }
    }

    fn acknowledge(&mut self, kind: &str, ctx: &mut Context<Self>) {
        let channels: Vec<&str> = self.channels.iter().map(|c| c.as_str()).collect();
        let bank = self.bank.as_ref().map(|b| b.as_str().to_string());
        self.control(kind, json!({"channels": channels, "bank": bank}), ctx);
    }
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // The hub's try_send lands here; the bounded queue that matters is `tx`.
        ctx.set_mailbox_capacity(SESSION_MAILBOX_CAPACITY);
        self.metrics.ws_sessions.inc();
        self.hub.do_send(Connect {
            id: self.id,
            deliver: ctx.address().recipient(),
            lagged: ctx.address().recipient(),
            stopping: ctx.address().recipient(),
            bank: self.own_bank.clone(),
        });
        ctx.run_interval(KEY_CHECK_INTERVAL, |act, ctx| {
            if !act.key_revoked && !act.keys.is_active(act.key_id) {
                // Once: the close stops the session as soon as it is sent.
                act.key_revoked = true;
                act.close(
                    Some(CloseReason::from((CloseCode::Policy, "key revoked"))),
                    ctx,
                );
            }
        });
        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| {
            if act.last_heard.elapsed() > CLIENT_TIMEOUT {
                ctx.stop();
                return;
            }
            if act.missed.is_none() {
                let ping = act.encode(ws::Message::Ping(Bytes::new()));
                if act.tx.try_send(ping).is_err() {
                    act.lag(0, ctx);
                }
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.hub.do_send(Disconnect { id: self.id });
        self.metrics.ws_sessions.dec();
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl StreamHandler<Result<Frame, ProtocolError>> for WsSession {
    fn handle(&mut self, frame: Result<Frame, ProtocolError>, ctx: &mut Context<Self>) {
        self.last_heard = Instant::now();
        match frame {
            Ok(Frame::Text(_)) if !self.within_frame_rate(ctx) => {}
            Ok(Frame::Text(bytes)) => match std::str::from_utf8(&bytes) {
                Ok(text) => {
                    let text = text.to_string();
                    self.client_message(&text, ctx);
                }
                Err(_) => self.error("invalid_json", "text frames must be UTF-8".into(), ctx),
            },
            Ok(Frame::Ping(payload)) => {
                let pong = self.encode(ws::Message::Pong(payload));
                let _ = self.tx.try_send(pong);
            }
            Ok(Frame::Pong(_)) => {}
            Ok(Frame::Close(reason)) => self.close(reason, ctx),
            Ok(Frame::Binary(_) | Frame::Continuation(_)) => {
                self.error("unsupported_frame", "send JSON in text frames".into(), ctx)
            }
            Err(ProtocolError::Overflow) => self.close(
                Some(CloseReason::from((CloseCode::Size, "frame too large"))),
                ctx,
            ),
            Err(_) => ctx.stop(),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Deliver> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        for event in msg.0 {
            self.send(&event.kind, event.channel.as_str(), &event.data, ctx);
        }
    }
}

impl Handler<EngineStopping> for WsSession {
    type Result = ();

    /// The close frame goes in the queue if there is room (a client that does not
    /// read gets none) and the session ends: the connection closes once the queue is
    /// written, or when the shutdown grace runs out.
    fn handle(&mut self, _: EngineStopping, ctx: &mut Context<Self>) {
        let reason = CloseReason::from((CloseCode::Away, "the engine is stopping"));
        let frame = self.encode(ws::Message::Close(Some(reason)));
        let _ = self.tx.try_send(frame);
        ctx.stop();
    }
}

impl Handler<Lagged> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Lagged, ctx: &mut Context<Self>) {
        self.lag(msg.missed, ctx);
    }
}
