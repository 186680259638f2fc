//! Typed per-resource client over HTTP, with watches over websocket.
