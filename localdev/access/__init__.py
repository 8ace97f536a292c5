"""IAM for the local deployment: every call made with a deployed role's credentials is
evaluated against that role's policies (and the KMS key policy where a service uses the key
on the caller's behalf), as AWS would, and denied where AWS would deny it.

moto's own evaluator (`INITIAL_NO_AUTH_ACTION_COUNT`) reads identity policies only, checks
most calls against the resource `*` and evaluates only the condition keys it extracts itself,
so it passes what AWS refuses (a key scoped by `kms:ViaService`, a stream ARN other than the
one granted). Here:

- policy.py    the evaluator: explicit deny, identity and resource policies, key policies
               with their delegation to IAM, conditions (pure, no moto)
- calls.py     what one emulator request asks for: action, resource ARN, context keys, and
               the key uses a service makes for the caller (read from moto's backends)
- report.py    the access log of a run: the denied calls and the grants no call used
- trust.py     a role's trust policy: which service may assume it, with the keys that service sends
"""

# The emulator appends each decision here, one JSON object a line (set by localdev/session.py).
ACCESS_LOG_ENV = "LOCALDEV_ACCESS_LOG"
