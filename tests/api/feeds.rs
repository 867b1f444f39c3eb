//! Live WebSocket feeds with a real client (awc) against the real engine.

use std::time::Duration;

use crate::helpers::{inr_to_aed, test_settings, TestApp, WsClient};
use serde_json::{json, Value};

fn transfer(sender: &str, receiver: &str, amount: &str, from: &str, to: &str) -> Value {
    json!({"sender_bank": sender, "receiver_bank": receiver, "amount": amount,
           "from_currency": from, "to_currency": to})
}

fn assert_envelope(message: &Value) {
    for field in ["type", "channel", "data", "seq", "timestamp"] {
        assert!(message.get(field).is_some(), "{field} missing in {message}");
    }
}

#[actix_web::test]
async fn a_subscriber_receives_each_stored_transfer_and_the_netted_window() {
    let mut settings = test_settings();
    settings.window_duration_ms = 3_600_000;
    let app = TestApp::spawn_with_settings(settings).await;
    let mut ws = WsClient::connect(&app).await;
    ws.send(&json!({"type": "subscribe", "channels": ["transactions", "settlements", "notifications", "windows"]}))
        .await;
    let ack = ws.next_of("subscribed").await;
    assert_envelope(&ack);
    assert_eq!(ack["seq"], 1);
    assert_eq!(
        ack["data"]["channels"],
        json!(["transactions", "settlements", "notifications", "windows"])
    );

    let reply = app.submit_accepted(&inr_to_aed(json!("1234.56"))).await;
    let event = ws.next_of("transaction").await;
    assert_envelope(&event);
    assert_eq!(event["channel"], "transactions");
    assert_eq!(
        event["data"]["transaction_id"],
        reply.body["transaction_id"]
    );
    assert_eq!(event["data"]["amount"], "1234.56");
    assert_eq!(
        event["data"]["converted_amount"],
        reply.body["converted_amount"]
    );

    let window = app.close_window().await;
    let netted = ws.next_of("window_netted").await;
    assert_eq!(netted["channel"], "windows");
    let stored = app.window(window).await.body;
    assert_eq!(netted["data"], stored);
    let instruction = ws.next_of("instruction_created").await;
    assert_eq!(instruction["data"]["window_id"], window);
    // seq grows by one per message on this connection.
    assert!(instruction["seq"].as_u64().unwrap() > netted["seq"].as_u64().unwrap());
    drop(ws);
    app.stop().await;
}

#[actix_web::test]
async fn a_subscriber_to_one_bank_never_receives_another_banks_transfers() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::connect(&app).await;
    ws.send(&json!({"type": "subscribe", "channels": ["transactions"], "bank": "ENBD"}))
        .await;
    assert_eq!(ws.next_of("subscribed").await["data"]["bank"], "ENBD");
    app.submit_accepted(&transfer("ICICI", "ADCB", "10", "INR", "AED"))
        .await;
    let mine = app
        .submit_accepted(&transfer("HDFC", "ENBD", "20", "INR", "AED"))
        .await;
    app.submit_accepted(&transfer("AXIS", "ADCB", "30", "INR", "AED"))
        .await;
    let also_mine = app
        .submit_accepted(&transfer("ENBD", "AXIS", "5", "AED", "INR"))
        .await;
    let first = ws.next_of("transaction").await;
    let second = ws.next_of("transaction").await;
    assert_eq!(first["data"]["transaction_id"], mine.body["transaction_id"]);
    assert_eq!(
        second["data"]["transaction_id"],
        also_mine.body["transaction_id"]
    );
    assert!(ws.next(Duration::from_millis(300)).await.is_none());
    drop(ws);
    app.stop().await;
}

#[actix_web::test]
async fn invalid_client_messages_get_error_messages_and_the_connection_stays_open() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::connect(&app).await;
    ws.send_text("{not json").await;
    let error = ws.next_of("error").await;
    assert_envelope(&error);
    assert_eq!(error["data"]["code"], "invalid_json");
    ws.send(&json!({"type": "dance"})).await;
    assert_eq!(ws.next_of("error").await["data"]["code"], "unknown_type");
    ws.send(&json!({"type": "subscribe", "channels": ["weather"]}))
        .await;
    assert_eq!(ws.next_of("error").await["data"]["code"], "unknown_channel");
    ws.send(&json!({"type": "subscribe", "channels": ["windows"], "bank": "nope"}))
        .await;
    assert_eq!(
        ws.next_of("error").await["data"]["code"],
        "bank_code_invalid"
    );
    ws.send(&json!({"type": "ping"})).await;
    assert_eq!(ws.next_of("pong").await["channel"], "control");
    ws.send(&json!({"type": "subscribe", "channels": ["windows"]}))
        .await;
    ws.next_of("subscribed").await;
    ws.send(&json!({"type": "unsubscribe", "channels": ["windows"]}))
        .await;
    assert_eq!(
        ws.next_of("unsubscribed").await["data"]["channels"],
        json!([])
    );
    drop(ws);
    app.stop().await;
}

#[actix_web::test]
async fn a_client_that_never_reads_is_cut_off_with_lagged_while_others_get_every_message_in_order()
{
    const TRANSFERS: usize = 20_000;
    let mut settings = test_settings();
    settings.ws_queue_max = 2048;
    let app = TestApp::spawn_with_settings(settings).await;
    let mut slow = WsClient::connect(&app).await;
    slow.send(&json!({"type": "subscribe", "channels": ["transactions"]}))
        .await;
    slow.next_of("subscribed").await;
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut ws = WsClient::connect(&app).await;
        ws.send(&json!({"type": "subscribe", "channels": ["transactions"]}))
            .await;
        ws.next_of("subscribed").await;
        readers.push(ws);
    }
    let read_all = readers.into_iter().map(|mut ws| async move {
        let mut seqs = Vec::with_capacity(TRANSFERS);
        while seqs.len() < TRANSFERS {
            let message = ws.next(Duration::from_secs(30)).await.expect("a message");
            if message["type"] == "transaction" {
                seqs.push(message["seq"].as_u64().unwrap());
            } else {
                assert_ne!(message["type"], "lagged", "a reader that keeps up lagged");
            }
        }
        seqs
    });
    let body = inr_to_aed(json!("1.00"));
    let submit_all = async {
        let mut accepted = 0;
        for _ in 0..TRANSFERS / 100 {
            let batch = (0..100).map(|_| app.submit(&body));
            accepted += futures_util::future::join_all(batch)
                .await
                .iter()
                .filter(|r| r.status == 202)
                .count();
        }
        accepted
    };
    let work = futures_util::future::join(submit_all, futures_util::future::join_all(read_all));
    // The slow client never reads, but it is alive: it pings, or the engine's heartbeat
    // would drop it (without `lagged`) whenever this takes over 10 s on a busy machine.
    let keep_slow_alive = async {
        loop {
            actix_web::rt::time::sleep(Duration::from_secs(2)).await;
            slow.send_ping().await;
        }
    };
    let (accepted, seqs) =
        match futures_util::future::select(std::pin::pin!(work), std::pin::pin!(keep_slow_alive))
            .await
        {
            futures_util::future::Either::Left((done, _)) => done,
            futures_util::future::Either::Right(_) => unreachable!("the pings never end"),
        };
    assert_eq!(accepted, TRANSFERS);
    for seqs in seqs {
        // The subscription ack was 1; then every transaction with no gap.
        let expected: Vec<u64> = (2..2 + TRANSFERS as u64).collect();
        assert_eq!(seqs, expected);
    }
    // The slow client now reads what was queued for it: then `lagged`, then the close.
    let mut last = Value::Null;
    while let Some(message) = slow.next(Duration::from_secs(15)).await {
        last = message;
    }
    assert_eq!(last["type"], "lagged", "{last}");
    assert!(last["data"]["missed"].as_u64().unwrap() > 0);
    assert!(app.metrics.ws_lagged_disconnects.get() >= 1);
    drop(slow);
    app.stop().await;
}

#[actix_web::test]
async fn positions_and_notifications_reach_the_banks_subscriber() {
    let app = TestApp::spawn().await;
    app.set_cap("ICICI", "INR", "1000").await;
    let mut ws = WsClient::connect(&app).await;
    ws.send(
        &json!({"type": "subscribe", "channels": ["positions", "notifications"], "bank": "ICICI"}),
    )
    .await;
    ws.next_of("subscribed").await;
    assert_eq!(app.submit(&inr_to_aed(json!("900"))).await.status, 202);
    let warning = ws.next_of("limit_warning").await;
    assert_eq!(warning["channel"], "notifications");
    assert_eq!(warning["data"]["exposure"], "900.00");
    assert_eq!(
        (&warning["data"]["net_debit_cap"], &warning["data"]["limit"]),
        (&json!("1000.00"), &json!("1000.00"))
    );
    let position = ws.next_of("position").await;
    assert_eq!(position["channel"], "positions");
    assert_eq!(position["data"]["bank"], "ICICI");
    assert_eq!(position["data"]["positions"][0]["exposure"], "900.00");
    app.update_bank("ICICI", &json!({"status": "suspended"}))
        .await;
    let suspended = ws.next_of("bank_suspended").await;
    assert_eq!(suspended["data"]["code"], "ICICI");
    drop(ws);
    app.stop().await;
}

#[actix_web::test]
async fn protocol_pings_are_answered_and_sessions_are_bounded() {
    use futures_util::{SinkExt, StreamExt};
    let mut settings = test_settings();
    settings.ws_sessions_max = 1;
    let app = TestApp::spawn_with_settings(settings).await;
    let url = format!("{}/ws", app.address.replace("http://", "ws://"));
    let key = app.keys.operator.clone();
    let (_, mut first) = awc::Client::new()
        .ws(url.as_str())
        .bearer_auth(&key)
        .connect()
        .await
        .unwrap();
    first
        .send(awc::ws::Message::Ping("hello".into()))
        .await
        .unwrap();
    let pong = first.next().await.unwrap().unwrap();
    assert_eq!(pong, awc::ws::Frame::Pong("hello".into()));
    // The second session is over the bound: refused before the handshake.
    let refused = awc::Client::new()
        .ws(url.as_str())
        .bearer_auth(&key)
        .connect()
        .await;
    match refused {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => assert_eq!(status, 503),
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    drop(first);
    app.stop().await;
}
