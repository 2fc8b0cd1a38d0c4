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
from tritonclient.utils import InferenceServerException

from triton_client_check import CheckFailed, check, check_result, infer


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} HOST:PORT CA_FILE", file=sys.stderr)
        return 2
    url, ca_file = argv[1], argv[2]
    client = httpclient.InferenceServerClient(
        url=url, ssl=True, ssl_options={"ca_certs": ca_file}
    )
    try:
        check(client.is_server_live(), "is_server_live() returned False over TLS")
        check(client.is_model_ready("iris"), "is_model_ready('iris') returned False over TLS")
        check_result(infer(client, binary=True), "tls")
    except CheckFailed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except InferenceServerException as e:
        print(f"FAIL: server returned an error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # handshake refused, certificate not trusted, ...
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
