"""Error reporting that never takes the app down (A1111: modules.errors)."""
import sys
import textwrap
import traceback

exception_records = []


def format_exception(e, tb):
    return {"exception": str(e), "traceback": [[f"{f.filename}, line {f.lineno}, {f.name}", f.line] for f in traceback.extract_tb(tb)]}


def get_exceptions():
    return list(reversed(exception_records))


def record_exception():
    _, e, tb = sys.exc_info()
    if e is None:
        return
    if exception_records and exception_records[-1]["exception"] == str(e):
        return
    exception_records.append(format_exception(e, tb))
    del exception_records[:-5]


def report(message: str, *, exc_info: bool = False) -> None:
    """Print `*** message` and, with exc_info, the indented traceback of the exception being handled."""
    record_exception()
    for line in message.splitlines():
        print("***", line, file=sys.stderr)
    if exc_info:
        print(textwrap.indent(traceback.format_exc(), "    "), file=sys.stderr)
        print("---", file=sys.stderr)


def print_error_explanation(message):
    record_exception()
    lines = message.strip().split("\n")
    width = max(len(x) for x in lines)
    print("=" * width, file=sys.stderr)
    for line in lines:
        print(line, file=sys.stderr)
    print("=" * width, file=sys.stderr)


def display(e: Exception, task, *, full_traceback=False):
    record_exception()
    print(f"{task or 'error'}: {type(e).__name__}", file=sys.stderr)
    te = traceback.TracebackException.from_exception(e)
    if full_traceback:
        te.stack = traceback.StackSummary(traceback.extract_stack()[:-2] + te.stack)
    print(*te.format(), sep="", file=sys.stderr)


def display_once(e: Exception, task):
    if task in _already_displayed:
        return
    display(e, task)
    _already_displayed[task] = 1


_already_displayed = {}


def run(code, task):
    try:
        code()
    except Exception as e:
        display(task, e)


def check_versions():
    pass
