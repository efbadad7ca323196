"""The exceptions the CLI turns into a one-line error, and the exit codes of every `facedouble` command.

Exit codes (the README's table is this one):

=====  ========  =====================================================================================
code   name      meaning
=====  ========  =====================================================================================
0      ok        done (`verify`: marked - C2PA valid and watermark found)
1      -         `verify` only: not marked
2      usage     the command cannot run as given: unknown or retired flag, bad setting or config key,
                 conflicting options (UsageError; argparse's own errors too)
3      input     an input is missing, unreadable, truncated or malformed (InputError)
4      policy    refused by a trust rule: consent missing/expired/withdrawn, explicit content, unsigned
                 render (PolicyError)
5      -         `verify` only: tampered (C2PA present but altered)
6      -         `verify` only: partially marked (e.g. re-encoded: C2PA gone, watermark found)
7      -         `verify` only: watermark found but its payload does not match the render record
8      -         `verify` only: other provenance, generative/composited AI declared by another tool
9      -         `verify` only: an unedited camera capture (`c2pa.created` + digitalCapture)
10     -         `verify` only: edited, no AI declared
11     -         `verify` only: C2PA intact but its signer is untrusted or expired
70     internal  the run itself failed: an encoder or signer crashed, training diverged, or a bug
                 (InternalError, and any unexpected exception; `-v` shows the traceback)
130    -         interrupted (Ctrl-C); finished work is kept, re-running resumes
=====  ========  =====================================================================================
"""

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_POLICY = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

# code -> (name, meaning), for the README table and the tests; verify's own results are in trust.verify.
EXIT_CODES: dict[int, tuple[str, str]] = {
    EXIT_OK: ("ok", "done"),
    EXIT_USAGE: ("usage", "the command cannot run as given (flag, setting, config key)"),
    EXIT_INPUT: ("input", "an input is missing, unreadable, truncated or malformed"),
    EXIT_POLICY: ("policy", "refused by a trust rule (consent, explicit content, signing)"),
    EXIT_INTERNAL: ("internal", "the run itself failed (encoder, signer, diverged training) or a bug"),
    EXIT_INTERRUPTED: ("interrupted", "Ctrl-C; finished work is kept, re-running resumes"),
}


class FacedoubleError(Exception):
    """A problem the user can fix, explained in one line. Exit code 2 (usage) unless a subclass says more."""

    exit_code = EXIT_USAGE


class UsageError(FacedoubleError):
    """The command cannot run as given: bad flag, setting, config key or combination of options."""

    exit_code = EXIT_USAGE


class InputError(FacedoubleError):
    """Unreadable, truncated or malformed input."""

    exit_code = EXIT_INPUT


class PolicyError(FacedoubleError):
    """Refused by a trust rule (missing consent, explicit content)."""

    exit_code = EXIT_POLICY


class InternalError(FacedoubleError):
    """The run itself failed (a subprocess crashed, training diverged): not the user's input or settings."""

    exit_code = EXIT_INTERNAL
