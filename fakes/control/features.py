"""Control routes for the gateway feature options (``aigw_fakes.state.options``).

``GET /__aigw/features`` and ``PUT /__aigw/features`` (a JSON object of the options to change; unknown or
invalid fields are refused with 400 naming them). ``POST /__aigw/reset`` restores the defaults.
"""

from __future__ import annotations

import pydantic

from aigw_fakes.parts import FakeParts
from aigw_fakes.state.options import FeatureOptions
from aigw_fakes.wire.http import IncomingRequest, Reply, json_reply

__all__ = ["install"]


def install(parts: FakeParts) -> None:
    features = parts.state.features

    async def get_options(request: IncomingRequest) -> Reply:
        return json_reply(200, {"success": True, "result": features.options.model_dump(), "errors": []})

    async def put_options(request: IncomingRequest) -> Reply:
        try:
            changes = request.json()
        except ValueError:
            changes = None
        if not isinstance(changes, dict):
            problem = {"code": 400, "message": "body: expected a JSON object of feature options"}
            return json_reply(400, {"success": False, "result": None, "errors": [problem]})
        try:
            options = FeatureOptions.model_validate({**features.options.model_dump(), **changes})
        except pydantic.ValidationError as exc:
            errors = [
                {"code": 400, "message": f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"}
                for e in exc.errors()
            ]
            return json_reply(400, {"success": False, "result": None, "errors": errors})
        features.apply(options)
        return json_reply(200, {"success": True, "result": options.model_dump(), "errors": []})

    limit = parts.state.config.max_control_body_bytes
    parts.router.add(["GET"], "/__aigw/features", get_options, "control features get", limit)
    parts.router.add(["PUT"], "/__aigw/features", put_options, "control features put", limit)
