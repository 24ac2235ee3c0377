"""Schemathesis hooks for stockledger's conformance run (crates/e2e/tests/openapi_conformance.rs).

Stripe events are signed the way Stripe signs them, so that the run reaches the event
parser behind the signature check and not only the 401: the body is serialized here once,
and the `Stripe-Signature` header (`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`) is
computed over exactly those bytes with the test's endpoint secret
(`STOCKLEDGER_TEST_STRIPE_SECRET`). This is an independent implementation of Stripe's
scheme (docs/providers.md, "Stripe"), not the product's code.

PortOne and Adyen carry their signatures inside the body, over fields the generator
chooses; their signed paths are covered by the provider conformance tests
(crates/ingress/tests/providers_http.rs). Here they are fuzzed unsigned: every answer must
still be a documented 4xx with the documented body, never a 5xx.
"""

import hashlib
import hmac
import json
import os
import time

import schemathesis


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.operation.path != "/webhooks/stripe" or case.method.upper() != "POST":
        return
    secret = os.environ.get("STOCKLEDGER_TEST_STRIPE_SECRET")
    if not secret:
        return
    body = case.body
    # A case without a body (Schemathesis's `NotSet`) has nothing to sign.
    if type(body).__name__ == "NotSet":
        return
    if isinstance(body, (bytes, bytearray)):
        raw = bytes(body)
    else:
        raw = json.dumps(body).encode("utf-8")
    timestamp = int(time.time())
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + raw, hashlib.sha256)
    if case.headers is None:
        case.headers = {}
    case.headers["Stripe-Signature"] = f"t={timestamp},v1={mac.hexdigest()}"
    case.body = raw
