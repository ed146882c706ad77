#!/bin/sh
# DEV ONLY. Makes a throw-away certificate authority and, signed by it, a server certificate for
# localhost / 127.0.0.1 / ::1 and a client certificate (CN and DNS name "dev-client"), for the
# shipped default config and the tests. Anyone who reads these files can impersonate the server:
# never use them outside a test machine (see the README, "Certificates", for real ones).
#
#   certs/dev/make_dev_certs.sh OUT_DIR [--force | --renew]
#
# Writes OUT_DIR/{ca.pem,ca.key,server.pem,server.key,client.pem,client.key}; an existing set
# is kept unless --force (everything new) or --renew (new server and client certificates and
# keys from the existing CA, as a certificate rotation would bring). Environment: DEV_CERT_DAYS
# (leaf validity, default 825), DEV_CERT_CN (server CN, default localhost), DEV_CERT_SAN (more
# subjectAltNames for the server, e.g. "IP:127.0.0.10,DNS:sbc.test").
set -eu
out=${1:?usage: make_dev_certs.sh OUT_DIR [--force | --renew]}
force=${2:-}
days=${DEV_CERT_DAYS:-825}
cn=${DEV_CERT_CN:-localhost}

if [ -z "$force" ] && [ -s "$out/server.pem" ] && [ -s "$out/client.pem" ]; then exit 0; fi
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ "$force" = --renew ] && [ -s "$out/ca.key" ]; then
  cp "$out/ca.key" "$out/ca.pem" "$work/"
else
  key "$work/ca.key"
  openssl req -x509 -new -key "$work/ca.key" -sha256 -days 3650 -subj "/O=Palisade/CN=Palisade DEV-ONLY CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$work/ca.pem"
fi

leaf() {  # name, CN, subjectAltName, extendedKeyUsage
  key "$work/$1.key"
  openssl req -new -key "$work/$1.key" -subj "/O=Palisade DEV-ONLY/CN=$2" -out "$work/$1.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
    "$4" "$3" > "$work/$1.ext"
  openssl x509 -req -in "$work/$1.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -days "$days" -sha256 -extfile "$work/$1.ext" -out "$work/$1.pem" 2>/dev/null
}
names="DNS:localhost,IP:127.0.0.1,IP:::1"
[ "$cn" = localhost ] || names="DNS:$cn,$names"
[ -z "${DEV_CERT_SAN:-}" ] || names="$names,$DEV_CERT_SAN"
leaf server "$cn" "$names" serverAuth,clientAuth
leaf client dev-client "DNS:dev-client" clientAuth

# Each file is replaced whole (rename), so a reader never sees half of one.
for f in ca.pem ca.key server.pem server.key client.pem client.key; do
  cp "$work/$f" "$out/.$f.new" && mv -f "$out/.$f.new" "$out/$f"
done
chmod 0644 "$out/ca.pem" "$out/server.pem" "$out/client.pem"
