"""`icp-fit` in Python: an exit criterion scoring the prospect against the
ideal customer profile given in its config (the same rule, and the same
reasons byte for byte, as the Rust plugin in plugins/icp-fit).

Config (every check is optional; only configured checks count):
- `min_employees`: the `employees` field is at least this;
- `min_budget`: the `budget` field is at least this;
- `industries`: the `industry` field is one of these (comma-separated);
- `countries`: the `country` field is one of these (comma-separated);
- `min_score`: the share of checks that must pass, 0-1 (default 1).
"""

from stagecoach_plugin import Input, Plugin, PluginError, Verdict, num


class IcpFit(Plugin):
    name = "icp-fit"
    description = "Scores the prospect's fields against the ideal customer profile in its config."
    reads_activities = False

    def evaluate(self, input: Input) -> Verdict:
        p, c = input.prospect, input.config
        passed, failed = [], []
        for config, field in (("min_employees", "employees"), ("min_budget", "budget")):
            minimum = c.number(config)
            if minimum is None:
                continue
            value = p.number(field)
            if value is None:
                failed.append(f"`{field}` not set")
            elif value >= minimum:
                passed.append(f"{field} {num(value)} ≥ {num(minimum)}")
            else:
                failed.append(f"{field} {num(value)} < {num(minimum)}")
        for config, field in (("industries", "industry"), ("countries", "country")):
            allowed = c.items(config)
            if not allowed:
                continue
            value = p.text(field)
            if value is None:
                failed.append(f"`{field}` not set")
            elif any(_same_ascii_case(a, value) for a in allowed):
                passed.append(f"{field} {value}")
            else:
                failed.append(f"{field} {value} not in {', '.join(allowed)}")
        total = len(passed) + len(failed)
        if total == 0:
            raise PluginError(
                "icp-fit has no checks configured; set `min_employees`, `min_budget`, "
                "`industries` or `countries`"
            )
        min_score = c.number("min_score")
        if min_score is None:
            min_score = 1.0
        reason = f"ICP score {len(passed)}/{total} ({'; '.join(passed + failed)})"
        return Verdict(len(passed) / total + 1e-9 >= min_score, reason)


def _same_ascii_case(a: str, b: str) -> bool:
    """Rust's `eq_ignore_ascii_case`: only ASCII letters fold (`É` ≠ `é`)."""
    return len(a) == len(b) and all(
        x == y or (x.isascii() and y.isascii() and x.lower() == y.lower()) for x, y in zip(a, b)
    )
