"""Whether a base model can be loaded, found out in milliseconds before anything is recorded.

The loader (``models.loading``) finds a misspelt name or an unreachable hub only after
torch and transformers are imported, an experiment row, a ``results/<id>.partial/`` folder
and an MLflow run are written: ~10 s and a failed experiment per try. ``check_base_model``
looks at the catalog, the disk and the local Hugging Face cache first, and asks the hub
(one request, a few seconds at most) only about an id that is in none of them.
"""

from __future__ import annotations

import difflib
import os

from loraforge.errors import ConfigError
from loraforge.models.catalog import CATALOG, ResolvedModel, resolve_base_model

FIELD = "model.base_model"
HUB_CHECK_SECONDS = 3.0
CATALOG_HINT = "Catalog names (`loraforge models`)"
# The loader's words (models.loading.ensure_loadable), so both places read the same.
UNREACHABLE = "is not in the local Hugging Face cache and the hub cannot be reached"


def fetch_hint(name: str) -> str:
    """How to get a hub model onto a machine that cannot download it; the loader
    (models.loading) says the same."""
    return (
        f"run `loraforge models pull {name}` on a machine with network access and copy its "
        "Hugging Face cache (HF_HOME) to the HF_HOME this machine uses, or pull it with "
        "`--to DIR` and give that local folder as model.base_model"
    )


def _refuse(message: str, hint: str) -> ConfigError:
    return ConfigError(message, hint=hint, field=FIELD)


def _looks_like_a_path(name: str) -> bool:
    """``./m``, ``/srv/m``, ``~/m``, ``a/b/c``: a folder, never a hub id (``org/name``)."""
    separators = {os.sep, os.altsep} - {None, "/"}
    return (
        name.startswith(("/", "./", "../", "~", "."))
        or name.count("/") > 1
        or any(s in name for s in separators)
    )


def _close_catalog_name(name: str) -> str | None:
    """The catalog name ``name`` was probably meant to be: ``minilm-l7``, ``MiniLM-L6``,
    ``roberta`` → ``minilm-l6``, ``minilm-l6``, ``roberta-base``."""
    close = difflib.get_close_matches(name.lower(), list(CATALOG), n=1, cutoff=0.6)
    return close[0] if close else None


def _offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), as huggingface_hub read it at import or as
    the environment says now: a server started offline must not wait on the hub."""
    from huggingface_hub import constants

    words = ("1", "ON", "YES", "TRUE")
    return constants.is_offline_mode() or any(
        os.environ.get(v, "").upper() in words for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _valid_hub_id(name: str) -> bool:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def in_local_cache(repo_id: str) -> bool:
    """Whether the hub model's config is in the local Hugging Face cache; no network."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def hub_has_model(repo_id: str) -> bool | None:
    """True if the hub knows the model, False if it does not, None if it cannot be asked
    (offline, no network, no answer within ``HUB_CHECK_SECONDS``)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    try:
        HfApi().model_info(repo_id, timeout=HUB_CHECK_SECONDS)
    except GatedRepoError:
        return True  # it exists; whether we may download it is the loader's to say
    except RepositoryNotFoundError:
        return False
    except OfflineModeIsEnabled:
        return None
    except HfHubHTTPError:
        return True  # the hub answered with another error (5xx): let the loader try
    except Exception:  # connect and timeout errors: their classes vary with the HTTP client
        return None
    return True


def _resolve(name: str) -> ResolvedModel:
    """``resolve_base_model``, its refusals (a folder without config.json, the bundled
    model not installed) naming the field too."""
    try:
        return resolve_base_model(name)
    except ConfigError as error:
        error.field = error.field or FIELD
        raise


def check_base_model(name: str) -> ResolvedModel:
    """The resolved model, or a ConfigError (``field`` = ``model.base_model``) that says what
    is wrong and how to fix it: a misspelt catalog name, a folder that is not there, a hub
    id the hub does not know, or one that is not cached while the hub cannot be reached."""
    entry = CATALOG.get(name)
    if entry is not None:
        resolved = _resolve(name)
        if resolved.is_local or in_local_cache(resolved.path_or_id):
            return resolved
        return _reachable_or_refused(name, resolved)
    if os.path.isdir(os.path.expanduser(name)):
        return _resolve(name)  # a folder without config.json is refused there
    catalog = f"{CATALOG_HINT}: {', '.join(CATALOG)}."
    if _looks_like_a_path(name):
        raise _refuse(
            f"base model folder {name} does not exist",
            "Check the path (a relative one starts from the working directory), or use a "
            f"catalog name. {catalog}",
        )
    close = _close_catalog_name(name)
    if close == name.lower() or (close and not _valid_hub_id(name)):
        # `MiniLM-L6`, `minilm l6`: no hub model can be meant.
        raise _refuse(
            f"base model {name!r} is not in the catalog: did you mean `{close}`?", catalog
        )
    if not _valid_hub_id(name):
        raise _refuse(
            f"base model {name!r} is neither a catalog name, an existing folder nor a "
            "Hugging Face model id",
            f"{catalog} A Hugging Face id looks like `org/name`.",
        )
    if in_local_cache(name):
        return _resolve(name)
    offline = _offline()
    # A name close to a catalog name is most likely a typo; the hub is still asked (when it
    # can be) because real models such as `roberta-large` are close to one too.
    known = None if offline else hub_has_model(name)
    if known:
        return _resolve(name)
    if close:
        meant = (
            f"There is no model {name!r} on the Hugging Face hub either."
            if known is False
            else f"If you meant the Hugging Face model {name!r}, it {UNREACHABLE}: "
            f"{fetch_hint(name)}."
        )
        raise _refuse(
            f"base model {name!r} is not in the catalog: did you mean `{close}`?",
            f"{catalog} {meant}",
        )
    if known is False:
        raise _refuse(
            f"there is no model {name!r} on the Hugging Face hub (nor a folder of that name here)",
            "Check the id (it looks like `org/name`; a private one needs `hf auth login`), "
            f"or use a catalog name. {catalog}",
        )
    raise _not_here(name, offline)


def _where(offline: bool) -> str:
    return (
        "the hub is switched off here (HF_HUB_OFFLINE=1)"
        if offline
        else "the hub cannot be reached"
    )


def _not_here(name: str, offline: bool, *, source: str | None = None) -> ConfigError:
    what = f"base model {name!r}" + (f" (Hugging Face {source})" if source else "")
    return _refuse(
        f"{what} is not in the local Hugging Face cache and {_where(offline)}",
        f"To use it, {fetch_hint(name)}; or use a catalog model that is available offline "
        "(`loraforge models` says which; the bundled minilm-l6 always is). "
        "loraforge never falls back to another model by itself.",
    )


def _reachable_or_refused(name: str, resolved: ResolvedModel) -> ResolvedModel:
    """A catalog model that must come from the hub: fine when the hub can be reached (the
    loader downloads it), refused at once, saying so, when it cannot."""
    offline = _offline()
    if not offline and hub_has_model(resolved.path_or_id) is not None:
        return resolved  # the hub answered; the loader fetches it (a False is a bad catalog)
    source = resolved.path_or_id if resolved.path_or_id != name else None
    raise _not_here(name, offline, source=source)
