from typing import Any

def run(
    candidates: list[Any],
    position: int,
    state: tuple[float, float, Any, float, float],
    rr: list[int],
    ordered: list[int],
    accepted: list[Any],
    since: list[Any],
    constants: tuple[int, int, float, float, float, float],
    /,
) -> tuple[int, float, float, Any, float, float]: ...

def humps(
    values: Any,
    lo: int,
    hi: int,
    first: int,
    last: int,
    radius: int,
    out_index: Any,
    out_height: Any,
    /,
) -> int: ...

def deflections(x: Any, starts: Any, width: int, prefiltered: bool, out: Any, /) -> None: ...

def lfilter(b: Any, a: Any, x: Any, y: Any, z: Any, /) -> None: ...
