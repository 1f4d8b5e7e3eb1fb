#!/usr/bin/env bash
# Regenerate the test-only TLS material in this folder (see README.md): a CA whose key is thrown
# away, and a certificate for IP 127.0.0.1 signed by it, both valid for 100 years.
# The extensions are the ones a strict verifier asks for (Python >= 3.13 sets
# VERIFY_X509_STRICT by default): the CA has a critical keyUsage (keyCertSign, cRLSign) and a
# Subject Key Identifier; the server certificate has an Authority Key Identifier, a critical
# keyUsage, serverAuth and the IP in subjectAltName.
# Usage: bash tests/data/tls/generate.sh   (needs the openssl command, 1.1.1 or newer)
set -euo pipefail
cd "$(dirname "$0")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
days=36500

openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days "$days" \
  -keyout "$work/ca-key.pem" -out ca.pem -subj "/CN=verify-access-tokens test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" 2>/dev/null

openssl req -new -newkey rsa:2048 -nodes -sha256 \
  -keyout server-key.pem -out "$work/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
cat > "$work/server.ext" <<'EXT'
basicConstraints=critical,CA:FALSE
subjectAltName=IP:127.0.0.1
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
authorityKeyIdentifier=keyid
subjectKeyIdentifier=hash
EXT
openssl x509 -req -in "$work/server.csr" -CA ca.pem -CAkey "$work/ca-key.pem" \
  -CAcreateserial -CAserial "$work/ca.srl" -sha256 -days "$days" \
  -extfile "$work/server.ext" -out server.pem 2>/dev/null
# The same key under a passphrase, which serve refuses at start (it never prompts).
openssl pkey -in server-key.pem -aes256 -passout pass:secret-passphrase \
  -out server-key-encrypted.pem
echo "wrote ca.pem, server.pem, server-key.pem, server-key-encrypted.pem in $(pwd)"
