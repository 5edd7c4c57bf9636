//! Reading a client's request body, bounded three ways: its size (`server.max_body_mb`), the
//! time it may take (`server.body_timeout_s`, so a client sending a byte a second cannot hold a
//! request), and the bytes of bodies held at once across all requests
//! (`server.body_budget_mb`, so many large bodies at once cannot take the machine's memory:
//! a body waits for room, in order, and is refused as busy if none comes in time).

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::body_budget::{BodyBudget, Held};
use crate::config::Settings;
use crate::error::GatewayError;

/// Reads `body` whole, within the limits `settings` set, holding room in `budget` for it.
pub(crate) async fn read(
    budget: &BodyBudget,
    headers: &HeaderMap,
    body: Body,
    settings: &Settings,
) -> Result<(Bytes, Held), GatewayError> {
    let limit = settings.server.max_body_bytes();
    let too_large = || GatewayError::PayloadTooLarge {
        limit_mb: settings.server.max_body_mb,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let deadline = Instant::now() + settings.server.body_timeout();
    // A body of unknown length may be as large as the limit: room for that much.
    let expected = declared.map_or(limit, |n| usize::try_from(n).unwrap_or(limit));
    let held = budget
        .reserve(expected, settings.server.body_budget_mb, deadline)
        .await?;
    let mut buf = BytesMut::with_capacity(expected.min(limit).min(1 << 20));
    let mut body = body;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(f))) => f,
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(GatewayError::BadRequest(format!(
                    "could not read the request body: {e}"
                )));
            }
            Err(_) => {
                return Err(GatewayError::BodyTimeout {
                    after: settings.server.body_timeout(),
                });
            }
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok((buf.freeze(), held))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings(budget_mb: u64, timeout_s: u64) -> Settings {
        let mut s = Settings::default();
        s.server.max_body_mb = 1;
        s.server.body_budget_mb = budget_mb;
        s.server.body_timeout_s = timeout_s;
        s
    }

    fn sized(n: usize) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, n.into());
        h
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_waits_for_room_and_is_refused_when_none_comes() {
        let budget = BodyBudget::new(1);
        let s = settings(1, 5);
        let big = vec![b'x'; 1 << 20];
        let (bytes, held) = read(&budget, &sized(big.len()), Body::from(big.clone()), &s)
            .await
            .unwrap();
        assert_eq!(bytes.len(), 1 << 20);
        // The budget is full: the next body waits, then is refused as busy.
        let e = read(&budget, &sized(10), Body::from("0123456789"), &s)
            .await
            .err()
            .unwrap();
        assert!(matches!(e, GatewayError::Busy(_)), "{e}");
        drop(held);
        let (bytes, _) = read(&budget, &sized(10), Body::from("0123456789"), &s)
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"0123456789");
    }

    #[tokio::test]
    async fn too_large_is_refused_before_reading() {
        let budget = BodyBudget::new(8);
        let e = read(&budget, &sized(2 << 20), Body::empty(), &settings(8, 5))
            .await
            .err()
            .unwrap();
        assert!(matches!(e, GatewayError::PayloadTooLarge { .. }), "{e}");
        // Without a length, counted as it comes.
        let e = read(
            &budget,
            &HeaderMap::new(),
            Body::from(vec![0u8; 2 << 20]),
            &settings(8, 5),
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(e, GatewayError::PayloadTooLarge { .. }), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_body_times_out() {
        let budget = BodyBudget::new(8);
        let slow = futures_util::stream::unfold(0, |i| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            (i < 100).then(|| (Ok::<_, std::io::Error>(Bytes::from_static(b"x")), i + 1))
        });
        let e = read(
            &budget,
            &sized(100),
            Body::from_stream(slow),
            &settings(8, 5),
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(e, GatewayError::BodyTimeout { .. }), "{e}");
    }
}
