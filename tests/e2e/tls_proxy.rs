//! TLS in front of tansu for the security test: a throwaway certificate authority and a server
//! certificate for 127.0.0.1 (made with OpenSSL, the library librdkafka uses), and a proxy on a
//! free port of 127.0.0.1 that completes each client's TLS handshake with that certificate and
//! relays the decrypted bytes to the broker's plaintext port. tansu advertises the proxy's
//! port, so every connection a client makes goes through TLS. (tansu 0.6.0 has TLS of its own,
//! but its command line refuses its certificate and key together: clap puts both in one group.)

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{Ssl, SslAcceptor, SslMethod};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use std::pin::Pin;

/// A certificate authority and a server certificate it signed.
pub struct Certificates {
    pub ca: X509,
    pub server: X509,
    pub server_key: PKey<Private>,
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    PKey::from_ec_key(EcKey::generate(&group).expect("EC key")).expect("key")
}

fn certificate(
    common_name: &str,
    serial: u32,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", common_name).expect("CN");
    let name = name.build();
    let mut builder = X509Builder::new().expect("builder");
    builder.set_version(2).expect("v3");
    let serial = BigNum::from_u32(serial).and_then(|number| number.to_asn1_integer()).expect("serial");
    builder.set_serial_number(&serial).expect("serial");
    builder.set_subject_name(&name).expect("subject");
    builder.set_pubkey(key).expect("public key");
    builder.set_not_before(&Asn1Time::days_from_now(0).expect("now")).expect("not before");
    builder.set_not_after(&Asn1Time::days_from_now(2).expect("later")).expect("not after");
    match issuer {
        None => {
            builder.set_issuer_name(&name).expect("issuer");
            builder.append_extension(BasicConstraints::new().critical().ca().build().expect("ca")).expect("extension");
            let usage = KeyUsage::new().critical().key_cert_sign().crl_sign().build().expect("usage");
            builder.append_extension(usage).expect("extension");
            builder.sign(key, MessageDigest::sha256()).expect("self-signed");
        }
        Some((ca, ca_key)) => {
            builder.set_issuer_name(ca.subject_name()).expect("issuer");
            let names = SubjectAlternativeName::new()
                .ip("127.0.0.1")
                .build(&builder.x509v3_context(Some(ca), None))
                .expect("subject alternative name");
            builder.append_extension(names).expect("extension");
            let usage = KeyUsage::new().critical().digital_signature().key_agreement().build().expect("usage");
            builder.append_extension(usage).expect("extension");
            builder.append_extension(ExtendedKeyUsage::new().server_auth().build().expect("eku")).expect("extension");
            builder.sign(ca_key, MessageDigest::sha256()).expect("signed");
        }
    }
    builder.build()
}

impl Certificates {
    pub fn new() -> Certificates {
        let ca_key = key();
        let ca = certificate("flowwatch test CA", 1, &ca_key, None);
        let server_key = key();
        let server = certificate("127.0.0.1", 2, &server_key, Some((&ca, &ca_key)));
        Certificates { ca, server, server_key }
    }

    /// The CA certificate in PEM, for `ssl.ca.location`.
    pub fn ca_pem(&self) -> Vec<u8> {
        self.ca.to_pem().expect("PEM")
    }
}

/// The running proxy; stops (with its connections) when dropped.
pub struct TlsProxy {
    pub port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TlsProxy {
    /// Listens on a free port of 127.0.0.1 and relays to `backend` (host:port).
    pub fn start(certificates: &Certificates, backend: String) -> TlsProxy {
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("acceptor");
        acceptor.set_private_key(&certificates.server_key).expect("key");
        acceptor.set_certificate(&certificates.server).expect("certificate");
        acceptor.check_private_key().expect("key matches");
        let acceptor = acceptor.build();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("proxy port");
        let port = listener.local_addr().expect("address").port();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let backend = backend.clone();
                tokio::spawn(async move {
                    let Ok(ssl) = Ssl::new(acceptor.context()) else { return };
                    let Ok(mut tls) = tokio_openssl::SslStream::new(ssl, client) else { return };
                    // A client that does not speak TLS, or does not trust the certificate,
                    // fails here.
                    if Pin::new(&mut tls).accept().await.is_err() {
                        return;
                    }
                    let Ok(mut broker) = tokio::net::TcpStream::connect(&backend).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
                });
            }
        });
        TlsProxy {
            port,
            runtime: Some(runtime),
        }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
