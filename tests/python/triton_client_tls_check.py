"""Check a ferroserve serving HTTPS with the stock Triton HTTP client.

Usage:
    scripts/python-env.sh test
    .venv/bin/python tests/python/triton_client_tls_check.py 127.0.0.1:8443 ca.pem

The server must serve the iris example model under the name "iris" with a
certificate signed by the CA in ca.pem (for the host given). The client
verifies the certificate against that CA only (`ssl_options` `ca_certs`),
checks the server is live and ready, and does one iris inference. Prints OK
and exits 0 when every check passes; otherwise prints what failed and
exits 1.
"""

import sys

import tritonclient.http as httpclient

from triton_client_check import check, check_result, infer, run_checks


def tls_checks(client) -> None:
    check(client.is_server_live(), "is_server_live() returned False over TLS")
    check(client.is_model_ready("iris"), "is_model_ready('iris') returned False over TLS")
    check_result(infer(client, binary=True), "tls")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} HOST:PORT CA_FILE", file=sys.stderr)
        return 2
    url, ca_file = argv[1], argv[2]
    client = httpclient.InferenceServerClient(
        url=url, ssl=True, ssl_options={"ca_certs": ca_file}
    )
    return run_checks(client, tls_checks)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
