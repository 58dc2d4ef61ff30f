"""A tiny client of ``loraforge serve`` for the Makefile's shortcuts (no curl needed).

    python -m loraforge.serving.probe health [--url URL]
    python -m loraforge.serving.probe predict [--url URL] [--model REF] TEXT ...

Prints the server's JSON answer. Without TEXT, ``predict`` reads
``LORAFORGE_PREDICT_TEXT`` (``make predict-text text='Great!'`` sets it: no shell quoting
to get wrong), and the model from ``LORAFORGE_PREDICT_MODEL`` (``model=``). A token
for a production server comes from ``LORAFORGE_TOKEN``. Exit 0 on a 2xx answer, 1 on any
other answer, 9 when nothing answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

DEFAULT_URL = "http://127.0.0.1:8100"


def main(argv: list[str] | None = None) -> int:
    import httpx

    parser = argparse.ArgumentParser(prog="python -m loraforge.serving.probe")
    parser.add_argument("what", choices=["health", "predict", "models"])
    parser.add_argument("texts", nargs="*")
    parser.add_argument("--url", default=os.environ.get("LORAFORGE_SERVE_URL", DEFAULT_URL))
    parser.add_argument("--model", default=os.environ.get("LORAFORGE_PREDICT_MODEL") or None)
    args = parser.parse_intermixed_args(argv)
    headers = {}
    if token := os.environ.get("LORAFORGE_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    try:
        with httpx.Client(base_url=args.url, headers=headers, timeout=60) as client:
            if args.what == "predict":
                typed = os.environ.get("LORAFORGE_PREDICT_TEXT")
                texts = args.texts or ([typed] if typed else [])
                if not texts:
                    print("error: no text: give it as an argument, or text='…'", file=sys.stderr)
                    return 2
                body = {"texts": texts} | ({"model": args.model} if args.model else {})
                answer = client.post("/predict", json=body)
            else:
                answer = client.get(f"/{args.what}")
    except httpx.TransportError as error:
        print(
            f"error: nothing answers at {args.url} ({error})\n"
            "hint: start the server first: make serve (or loraforge serve)",
            file=sys.stderr,
        )
        return 9
    try:
        print(json.dumps(answer.json(), indent=2, ensure_ascii=False))
    except ValueError:
        print(answer.text)
    return 0 if answer.is_success else 1


if __name__ == "__main__":
    sys.exit(main())
