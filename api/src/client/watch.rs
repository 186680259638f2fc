//! Watch streams: one websocket (or chunked HTTP response) decoded into `WatchEvent`s.
//!
//! A stream is one connection: it ends when the server closes it. Reconnecting and resuming
//! from the last resourceVersion is the job of `runtime::watcher`, which also relists on 410.

use std::pin::Pin;

use futures::stream::{BoxStream, StreamExt};
use reqwest::header::AUTHORIZATION;
use serde::de::DeserializeOwned;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use url::Url;

use super::Client;
use super::error::ClientError;
use crate::types::WatchEvent;

/// A stream of watch events from one connection.
pub type WatchStream<T> =
    Pin<Box<dyn futures::Stream<Item = Result<WatchEvent<T>, ClientError>> + Send>>;

/// Opens a websocket watch at `url` (an `http://` or `https://` URL with `watch=true`) with
/// `client`'s TLS config and credential: `ws://` or `wss://` on the same host.
pub async fn watch_websocket<T: DeserializeOwned + Send + 'static>(
    client: &Client,
    mut url: Url,
) -> Result<WatchStream<T>, ClientError> {
    let shown = url.to_string();
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    if url.set_scheme(scheme).is_err() {
        return Err(ClientError::InvalidUrl {
            url: shown,
            reason: format!("cannot be turned into {scheme}://"),
        });
    }
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| websocket_error(&shown, e))?;
    let transport = client.websocket();
    if let Some(value) = &transport.authorization {
        request.headers_mut().insert(AUTHORIZATION, value.clone());
    }
    let connector = Connector::Rustls(transport.tls.clone());
    let (socket, _response) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
            .await
            .map_err(|e| websocket_error(&shown, e))?;
    let stream = socket.filter_map(move |message| {
        let shown = shown.clone();
        async move {
            match message {
                Ok(Message::Text(text)) => Some(decode_event::<T>(&shown, text.as_bytes())),
                Ok(Message::Binary(bytes)) => Some(decode_event::<T>(&shown, &bytes)),
                Ok(Message::Close(_))
                | Ok(Message::Ping(_))
                | Ok(Message::Pong(_))
                | Ok(Message::Frame(_)) => None,
                Err(e) => Some(Err(websocket_error(&shown, e))),
            }
        }
    });
    // A websocket error ends the connection; stop after the first one.
    Ok(stop_after_error(stream.boxed()))
}

/// Opens a chunked-HTTP watch at `url`: one JSON event per line.
pub async fn watch_http<T: DeserializeOwned + Send + 'static>(
    http: &reqwest::Client,
    url: Url,
) -> Result<WatchStream<T>, ClientError> {
    let shown = url.to_string();
    let response = http
        .get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|source| ClientError::http("GET", &shown, source))?;
    let code = response.status();
    if !code.is_success() {
        let body = response.bytes().await.unwrap_or_default();
        return Err(ClientError::Api(Box::new(super::decode_status(
            code.as_u16(),
            &body,
        ))));
    }
    let label = shown.clone();
    let bytes = response.bytes_stream();
    let lines = futures::stream::unfold(
        (bytes, Vec::<u8>::new(), shown, false),
        |(mut bytes, mut buffer, shown, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some((Ok(line), (bytes, buffer, shown, false)));
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(source)) => {
                        let err = ClientError::Http {
                            method: "GET",
                            url: shown.clone(),
                            source,
                        };
                        return Some((Err(err), (bytes, buffer, shown, true)));
                    }
                    None => {
                        if buffer.iter().all(u8::is_ascii_whitespace) {
                            return None;
                        }
                        let rest = std::mem::take(&mut buffer);
                        return Some((Ok(rest), (bytes, buffer, shown, true)));
                    }
                }
            }
        },
    );
    let events = lines.map(move |line| line.and_then(|l| decode_event::<T>(&label, &l)));
    Ok(stop_after_error(events.boxed()))
}

/// Decodes one watch event.
fn decode_event<T: DeserializeOwned>(
    url: &str,
    bytes: &[u8],
) -> Result<WatchEvent<T>, ClientError> {
    serde_json::from_slice(bytes).map_err(|source| ClientError::Decode {
        url: url.to_string(),
        source,
    })
}

/// Wraps a websocket error with the URL; a failed TLS handshake becomes [`ClientError::Tls`].
fn websocket_error(url: &str, source: tokio_tungstenite::tungstenite::Error) -> ClientError {
    let reason = match &source {
        tokio_tungstenite::tungstenite::Error::Tls(
            tokio_tungstenite::tungstenite::error::TlsError::Rustls(tls),
        ) => Some(tls.to_string()),
        other => super::tls::tls_cause(other),
    };
    if let Some(reason) = reason {
        return ClientError::Tls {
            url: url.to_string(),
            reason,
        };
    }
    if let tokio_tungstenite::tungstenite::Error::Http(response) = &source {
        let code = response.status().as_u16();
        if let Some(body) = response.body() {
            return ClientError::Api(Box::new(super::decode_status(code, body)));
        }
    }
    ClientError::WebSocket {
        url: url.to_string(),
        source: Box::new(source),
    }
}

/// Ends the stream right after the first error, which always means the connection is gone.
fn stop_after_error<T: Send + 'static>(
    stream: BoxStream<'static, Result<T, ClientError>>,
) -> Pin<Box<dyn futures::Stream<Item = Result<T, ClientError>> + Send>> {
    Box::pin(futures::stream::unfold(
        (stream, false),
        |(mut stream, failed)| async move {
            if failed {
                return None;
            }
            let item = stream.next().await?;
            let failed = item.is_err();
            Some((item, (stream, failed)))
        },
    ))
}
