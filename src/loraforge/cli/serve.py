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
    precision: Annotated[
        str,
        typer.Option(
            metavar="auto|fp32|bf16",
            help="auto: bf16 where the hardware runs it natively (a GPU; a CPU with AVX-512 "
            "BF16 or AMX), as training does; else fp32.",
        ),
    ] = "auto",
    max_batch_tokens: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="A batch's padded size (texts x longest) at most: texts of like length "
            "batch together, less padding (512: measured best for tweets on 2 cores).",
        ),
    ] = 512,
    max_wait_ms: Annotated[
        float,
        typer.Option(min=0, metavar="MS", help="How long a batch waits to fill before it runs."),
    ] = 5.0,
    max_queue: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="Texts the server holds at most (tokenizing, waiting, running); beyond: "
            "429 with Retry-After at once.",
        ),
    ] = 128,
    timeout_ms: Annotated[
        float,
        typer.Option(min=1, metavar="MS", help="A request not answered by then: 504."),
    ] = 30_000,
    device: Annotated[
        str, typer.Option(metavar="auto|cpu|cuda|mps", help="Where the models run.")
    ] = "auto",
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="CPU threads for the models (default: PyTorch's, one per core).",
        ),
    ] = None,
) -> None:
    """Serve fine-tuned models over HTTP: POST /predict, GET /health, /models, /metrics.

    One base model is loaded once and each served model is a LoRA adapter on it, so
    several models cost little more than one. Requests are micro-batched; a full queue
    answers 429 with Retry-After, a request past --timeout-ms 504.
    """
    from loraforge.errors import ConfigError
    from loraforge.serving.engine import PRECISION_CHOICES, QUANTIZE_CHOICES
    from loraforge.settings import get_settings

    settings = get_settings()  # a bad LORAFORGE_* value: our words, before anything loads
    if quantize not in QUANTIZE_CHOICES:
        raise ConfigError(
            f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}, not {quantize!r}"
        )
    if precision not in PRECISION_CHOICES:
        raise ConfigError(
            f"--precision must be one of {', '.join(PRECISION_CHOICES)}, not {precision!r}"
        )
    refs = [*(model or []), *(experiment or [])] or ["latest"]

    import torch
    import uvicorn

    from loraforge.models.device import select_device
    from loraforge.monitoring import logs
    from loraforge.serving.models import ServerOptions
    from loraforge.serving.server import create_serve_app

    chosen = select_device(device)
    if quantize == "int8" and chosen != "cpu":
        raise ConfigError(
            f"--quantize int8 is the CPU path, and the models would run on {chosen}",
            hint="Leave --quantize at none on a GPU (it runs bf16), or add --device cpu.",
        )
    options = ServerOptions(
        device=chosen,
        quantize=quantize,  # type: ignore[arg-type]
        precision=precision,
        max_batch_tokens=max_batch_tokens,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
    )
    if threads:
        torch.set_num_threads(threads)
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
