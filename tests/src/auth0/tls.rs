//! HTTPS for the emulator ([`EmulatorOptions::tls`](super::EmulatorOptions::tls)): a throwaway
//! test CA and a server certificate for `127.0.0.1` / `localhost` signed by it, and an Axum
//! [`Listener`](axum::serve::Listener) that completes TLS handshakes off the accept loop.
//!
//! The keys below were generated for these tests only (`openssl req -x509 -newkey ec …`, P-256,
//! valid until 2126). They protect nothing — never use them anywhere else. Clients trust the
//! emulator through [`EMU_TLS_CA_PEM`] (e.g. written to a file named by `SSL_CERT_FILE`).

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;

/// PEM of the test CA that signed the emulator's server certificate: what a client must trust.
pub const EMU_TLS_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBwTCCAWegAwIBAgIUIFnu6xo3h1jJzhlAOuYnlUhIBR0wCgYIKoZIzj0EAwIw
LTErMCkGA1UEAwwiYXV0aDAtZW11bGF0b3IgdGVzdCBDQSAodGhyb3dhd2F5KTAg
Fw0yNjEyMDYxMTI2MzVaGA8yMTI2MTExMjExMjYzNVowLTErMCkGA1UEAwwiYXV0
aDAtZW11bGF0b3IgdGVzdCBDQSAodGhyb3dhd2F5KTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABBKfoGi8Kk26E4YVrgHpN7PVD4lDWtA7q4ZrYUjKiY/VYPJd35D7
sK/5tS56fJSt1UkWE1Cu0P0aV74c7zrbt22jYzBhMB0GA1UdDgQWBBQDNZc9herG
xhciY/2mf2N+nj1jfzAfBgNVHSMEGDAWgBQDNZc9herGxhciY/2mf2N+nj1jfzAP
BgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggqhkjOPQQDAgNIADBF
AiBA/WrFYFiOKsOh6Md9QyEAvyzBw0m4cpI0bVs1VMGFGgIhAMAiilWzv8fmA0sL
hNhuO7qzCPoB7vJYpbz01B45aGrV
-----END CERTIFICATE-----
";

/// The emulator's server certificate (`127.0.0.1`, `localhost`), signed by [`EMU_TLS_CA_PEM`].
pub(crate) const SERVER_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIB2DCCAX6gAwIBAgIUbXmFSaN3/yDuBGhnuHJopQnjojAwCgYIKoZIzj0EAwIw
LTErMCkGA1UEAwwiYXV0aDAtZW11bGF0b3IgdGVzdCBDQSAodGhyb3dhd2F5KTAg
Fw0yNjEyMDYxMTI2MzVaGA8yMTI2MTExMjExMjYzNVowFDESMBAGA1UEAwwJMTI3
LjAuMC4xMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJH8ssJB2Y6Fa+9Or4xkK
M3HuFmbMJJFKKLPz+RToVwxM/arpJAfCxWN3ii7HEUI/tWzLvdVMUjAhavQIjoIv
vKOBkjCBjzAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwDAYDVR0TAQH/BAIw
ADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwHQYDVR0OBBYE
FItfyoWovniYdXdsE3duDgJpj1ANMB8GA1UdIwQYMBaAFAM1lz2F6sbGFyJj/aZ/
Y36ePWN/MAoGCCqGSM49BAMCA0gAMEUCIQCQxk+8l4LIn0odE/wMi22PqHVpxyQQ
uUBoDnj3qAqxMAIgI/kkHk/pRaD0yAhjY+h9nnSdTCFq//CAh6GQZn+kTRg=
-----END CERTIFICATE-----
";

/// PKCS#8 PEM of the server certificate's key (test-only).
pub(crate) const SERVER_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYHhmQIpjVBjm1sew
sovLA03gpQ/+T6dE/7Pf7UoLN9ihRANCAAQkfyywkHZjoVr706vjGQozce4WZswk
kUoos/P5FOhXDEz9qukkB8LFY3eKLscRQj+1bMu91UxSMCFq9AiOgi+8
-----END PRIVATE KEY-----
";

/// The DER inside a one-block PEM.
fn der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("auth0 emulator: test PEM")
}

/// A TCP listener whose connections arrive TLS-terminated.
pub(crate) struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    /// Serves TLS on `listener` with the emulator's certificate.
    pub(crate) fn new(listener: TcpListener) -> TlsListener {
        let addr = listener.local_addr().expect("auth0 emulator: local addr");
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(der(SERVER_CERT_PEM))],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der(SERVER_KEY_PEM))),
            )
            .expect("auth0 emulator: TLS configuration");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (tx, incoming) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                // A slow or failed handshake never holds up other connections.
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        TlsListener { incoming, addr }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
