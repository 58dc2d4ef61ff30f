"""`loraforge serve`: the prediction server (serving/server.py) on uvicorn.

Imported at the end of cli/app.py, whose helpers it shares.
"""

from __future__ import annotations

from typing import Annotated

import typer

from loraforge.cli.app import HostOpt, app, console

ModelsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        "-m",
        metavar="NAME@STAGE|NAME:N",
        help="A registered model to serve: NAME@production (followed: a new Production "
        "version is swapped in), NAME@staging or NAME:3. Repeat for several.",
    ),
]
ExperimentsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--experiment",
        "-e",
        metavar="ID",
        help="An experiment's model to serve, or 'latest'. Repeat for several. Without "
        "--model or --experiment: latest.",
    ),
]


@app.command("serve")
def serve(
    model: ModelsOpt = None,
    experiment: ExperimentsOpt = None,
    port: Annotated[
        int, typer.Option(min=0, max=65535, metavar="PORT", help="Port to listen on.")
    ] = 8100,
    host: HostOpt = "127.0.0.1",
    quantize: Annotated[
        str,
        typer.Option(
            metavar="none|int8",
            help="int8: dynamic int8 base weights on CPU (faster, a little less accurate; "
            "GET /models shows both accuracies). On CUDA the engine runs bf16.",
        ),
    ] = "none",
    max_batch_tokens: Annotated[
        int,
        typer.Option(min=1, metavar="N", help="A batch's padded size (texts x longest) at most."),
    ] = 8192,
    max_wait_ms: Annotated[
        float,
        typer.Option(min=0, metavar="MS", help="How long a batch waits to fill before it runs."),
    ] = 5.0,
    max_queue: Annotated[
        int,
        typer.Option(min=1, metavar="N", help="Texts waiting at most; beyond: 429 Retry-After."),
    ] = 1024,
    timeout_ms: Annotated[
        float,
        typer.Option(min=1, metavar="MS", help="A request not answered by then: 504."),
    ] = 30_000,
    device: Annotated[
        str, typer.Option(metavar="auto|cpu|cuda|mps", help="Where the models run.")
    ] = "auto",
) -> None:
    """Serve fine-tuned models over HTTP: POST /predict, GET /health, /models, /metrics.

    One base model is loaded once and each served model is a LoRA adapter on it, so
    several models cost little more than one. Requests are micro-batched; a full queue
    answers 429 with Retry-After, a request past --timeout-ms 504.
    """
    from loraforge.errors import ConfigError
    from loraforge.serving.engine import QUANTIZE_CHOICES
    from loraforge.settings import get_settings

    settings = get_settings()  # a bad LORAFORGE_* value: our words, before anything loads
    if quantize not in QUANTIZE_CHOICES:
        raise ConfigError(
            f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}, not {quantize!r}"
        )
    refs = [*(model or []), *(experiment or [])] or ["latest"]

    import uvicorn

    from loraforge.models.device import select_device
    from loraforge.monitoring import logs
    from loraforge.serving.models import ServerOptions
    from loraforge.serving.server import create_serve_app

    options = ServerOptions(
        device=select_device(device),
        quantize=quantize,  # type: ignore[arg-type]
        max_batch_tokens=max_batch_tokens,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
    )
    logs.configure("serve")
    if settings.env != "production" and host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]warning:[/yellow] serving {host} without tokens (development mode); "
            "set LORAFORGE_ENV=production to require them",
            highlight=False,
        )
    server_app = create_serve_app(settings, refs, options, timeout_ms=timeout_ms)
    console.print(
        f"serving {', '.join(refs)} on http://{host}:{port} "
        f"(GET /health answers 200 once every model is loaded)",
        markup=False,
        highlight=False,
    )
    uvicorn.run(server_app, host=host, port=port, log_config=None, access_log=False)
