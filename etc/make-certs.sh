#!/bin/sh
# etc/make-certs.sh DIR — a self-signed certificate and key for trying
# RTSPS, the HTTPS tunnel and wss on this machine (`make certs` writes
# them to build/certs). FOR TESTING ONLY: never use a self-signed pair in
# production; clients cannot verify it and will (rightly) refuse it unless
# told not to check. Use a certificate from your CA or ACME instead.
set -eu
dir=${1:-build/certs}
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
	-subj "/CN=localhost" \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
	-keyout "$dir/rtspd.key" -out "$dir/rtspd.crt" 2>/dev/null
chmod 600 "$dir/rtspd.key"
echo "$dir/rtspd.crt"
echo "$dir/rtspd.key"
