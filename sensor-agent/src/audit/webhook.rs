//! The audit webhook: an HTTPS endpoint the API server's
//! `--audit-webhook-config-file` points at. It POSTs `EventList` batches.
//!
//! - TLS with the given certificate and key; with `--client-ca` a client
//!   certificate signed by that CA is required (the API server presents
//!   the one in its webhook kubeconfig).
//! - 200 only once the batch is in the bounded queue; 503 (counted in
//!   `sensor_audit_batches_rejected_total`) when the queue is full, so the
//!   API server backs off and retries instead of losing events.
//! - 413 for a body over `--max-body-bytes`, 400 naming what is wrong for
//!   a body that is not an audit event or `EventList` (nothing of such a
//!   batch is taken, so nothing else is lost), 405 for other methods.
//! - On SIGTERM it stops accepting connections, lets the requests in
//!   flight finish, and returns; the consumer then drains the queue.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode, body::Bytes, service::service_fn};
use hyper_util::rt::TokioIo;
use rustls::{RootCertStore, ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
    task::JoinSet,
};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::Item;
use crate::{
    metrics::Metrics,
    source::{Batch, Source, SourceFuture},
};
use serde_json::value::RawValue;

/// The API server's default webhook batch is 400 events; 32 MiB leaves
/// room for large `RequestResponse` bodies.
pub const DEFAULT_MAX_BODY: usize = 32 << 20;
/// How long requests in flight may take to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Loads the server certificate chain and key (PEM), and the CA that
/// client certificates must chain to, if any.
pub fn tls_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!(
            "{}: no certificate in it (expected PEM `BEGIN CERTIFICATE`)",
            cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: not a PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("reading the client CA {}", ca.display()))?
            {
                roots
                    .add(c.with_context(|| format!("{}: not a PEM certificate", ca.display()))?)
                    .with_context(|| format!("{}: unusable CA certificate", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("client CA {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .context("the certificate does not match the key")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

pub struct Webhook {
    pub listener: TcpListener,
    pub tls: Arc<ServerConfig>,
    pub max_body: usize,
    pub metrics: Arc<Metrics>,
}

impl Webhook {
    /// Binds `addr` now, so a taken port fails at start-up.
    pub async fn bind(
        addr: SocketAddr,
        tls: Arc<ServerConfig>,
        max_body: usize,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Webhook> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the audit webhook"))?;
        Ok(Webhook {
            listener,
            tls,
            max_body,
            metrics,
        })
    }
}

#[derive(serde::Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    items: Option<&'a RawValue>,
}

/// A body's records, as text: an `EventList`'s items, or the body itself
/// (one event or envelope). Checks the JSON whole, so a bad body is refused
/// before anything of it is queued.
pub fn split_body(text: &str) -> Result<Vec<Item>, String> {
    let t = text.trim();
    if !t.starts_with('{') {
        return Err("expected a JSON object (an EventList or one Event)".into());
    }
    // One parse checks the whole body and finds `kind` and `items`.
    let body: Body = serde_json::from_str(t).map_err(|e| format!("not JSON: {e}"))?;
    if body.kind.map(RawValue::get) != Some("\"EventList\"") {
        return Ok(vec![t.to_string()]);
    }
    let Some(items) = body.items else {
        return Ok(Vec::new());
    };
    let items: Vec<&RawValue> = serde_json::from_str(items.get())
        .map_err(|_| "EventList.items is not an array".to_string())?;
    items
        .into_iter()
        .map(|i| {
            let s = i.get();
            if s.starts_with('{') {
                Ok(s.to_string())
            } else {
                Err(format!(
                    "EventList.items holds {s:.40}, not an event object"
                ))
            }
        })
        .collect()
}

fn reply(code: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = code;
    r
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    tx: mpsc::Sender<Batch<Item>>,
    max_body: usize,
    metrics: Arc<Metrics>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if req.method() != Method::POST {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST audit EventList batches here\n",
        ));
    }
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Ok(reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "body over {max_body} bytes; lower the API server's --audit-webhook-batch-max-size\n"
            ),
        ));
    }
    let body = match Limited::new(req.into_body(), max_body).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Ok(reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over {max_body} bytes\n"),
            ));
        }
        Err(e) => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}\n"),
            ));
        }
    };
    let text = match std::str::from_utf8(&body) {
        Ok(t) => t,
        Err(e) => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                format!("body is not UTF-8: {e}\n"),
            ));
        }
    };
    let records = match split_body(text) {
        Ok(r) => r,
        Err(e) => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                format!("not an audit.k8s.io Event or EventList: {e}\n"),
            ));
        }
    };
    let batch = Batch::new(records, "webhook");
    match tx.try_send(batch) {
        Ok(()) => Ok(reply(StatusCode::OK, "{}\n")),
        Err(mpsc::error::TrySendError::Full(_)) => {
            metrics.audit_batches_rejected.inc();
            Ok(reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue full; retry later\n",
            ))
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            Ok(reply(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"))
        }
    }
}

impl Source<Item> for Webhook {
    fn describe(&self) -> String {
        match self.listener.local_addr() {
            Ok(a) => format!("audit webhook on https://{a}"),
            Err(_) => "audit webhook".into(),
        }
    }

    fn run(
        self: Box<Self>,
        tx: mpsc::Sender<Batch<Item>>,
        mut stop: watch::Receiver<bool>,
    ) -> SourceFuture {
        Box::pin(async move {
            let acceptor = TlsAcceptor::from(self.tls.clone());
            let mut conns = JoinSet::new();
            loop {
                let (tcp, peer) = tokio::select! {
                    r = self.listener.accept() => match r {
                        Ok(x) => x,
                        Err(e) => {
                            warn!("audit webhook accept failed: {e}");
                            continue;
                        }
                    },
                    _ = stop.changed() => break,
                };
                let (acceptor, tx, metrics, mut stop) = (
                    acceptor.clone(),
                    tx.clone(),
                    self.metrics.clone(),
                    stop.clone(),
                );
                let max_body = self.max_body;
                conns.spawn(async move {
                    let tls = match acceptor.accept(tcp).await {
                        Ok(t) => t,
                        Err(e) => {
                            // A wrong or missing client certificate ends here.
                            info!(%peer, "audit webhook TLS handshake refused: {e}");
                            return;
                        }
                    };
                    let svc =
                        service_fn(move |req| handle(req, tx.clone(), max_body, metrics.clone()));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc);
                    tokio::pin!(conn);
                    let res = tokio::select! {
                        r = conn.as_mut() => r,
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            conn.await
                        }
                    };
                    if let Err(e) = res {
                        debug!(%peer, "audit webhook connection: {e}");
                    }
                });
                // Reap finished connections so the set stays small.
                while conns.try_join_next().is_some() {}
            }
            drop(tx);
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
                while conns.join_next().await.is_some() {}
            })
            .await;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::split_body;

    #[test]
    fn an_event_list_splits_into_its_items_text() {
        let r = split_body(
            r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"a":1},{"b":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            vec![r#"{"a":1}"#.to_string(), r#"{"b":"x"}"#.to_string()]
        );
    }

    #[test]
    fn one_event_is_one_record() {
        assert_eq!(
            split_body(r#"{"kind":"Event","verb":"get"}"#)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn bad_bodies_are_refused_whole_with_the_reason() {
        assert!(
            split_body("{\"kind\":\"EventList\",\"items\":[")
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            split_body(r#"{"kind":"EventList","items":[1]}"#)
                .unwrap_err()
                .contains("not an event object")
        );
        assert!(split_body("[1]").unwrap_err().contains("JSON object"));
    }
}
