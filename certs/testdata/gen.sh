#!/bin/sh
# Regenerates the committed fixtures with Debian's openssl (run once; the
# tests do not call this script). Files:
#   server-legacy.pfx / .pass  PFX as Windows exports it (3DES, SHA-1 MAC),
#                              server cert for pfx.example.test + its CA
#   server-aes.pfx / .pass     the same, OpenSSL 3 default (PBES2 AES-256, SHA-256 MAC)
#   client-upn.der             client cert with UPN otherName + e-mail SAN
#   client-cn.der              client cert with subject CN only
#   ca.pem                     the CA that issued all of the above
set -eu
cd "$(dirname "$0")"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/ca.key" -out ca.pem \
  -subj "/O=easgate tests/CN=easgate fixture CA" -days 36500 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
issue() { # name subj ext
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/$1.key" -out "$t/$1.csr" -subj "$2"
  printf '%s\n' "$3" > "$t/$1.ext"
  openssl x509 -req -in "$t/$1.csr" -CA ca.pem -CAkey "$t/ca.key" -set_serial "0x$(openssl rand -hex 8)" -days 36500 -extfile "$t/$1.ext" -out "$t/$1.pem"
}
issue server "/CN=pfx.example.test" "subjectAltName=DNS:pfx.example.test
extendedKeyUsage=serverAuth"
issue upn "/O=Corp/CN=Alice Example" "subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:alice@corp.example.com,email:alice@corp.example.com
extendedKeyUsage=clientAuth"
issue cn "/CN=bob" "extendedKeyUsage=clientAuth"
printf 'easgate-test\n' > server-legacy.pass
printf 'easgate-test\n' > server-aes.pass
openssl pkcs12 -export -in "$t/server.pem" -inkey "$t/server.key" -certfile ca.pem -out server-legacy.pfx \
  -passout pass:easgate-test -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1
openssl pkcs12 -export -in "$t/server.pem" -inkey "$t/server.key" -certfile ca.pem -out server-aes.pfx \
  -passout pass:easgate-test
openssl x509 -in "$t/upn.pem" -outform DER -out client-upn.der
openssl x509 -in "$t/cn.pem" -outform DER -out client-cn.der
