"""IAM for the control API: access-key and role policies in IAM's JSON policy language.

* :mod:`dockyard.iam.policy` parses a policy document and evaluates requests against it (pure).
* :mod:`dockyard.iam.conditions` holds the ``Condition`` operators (pure).
* :mod:`dockyard.iam.actions` maps an operation and its parameters to the IAM action, the
  resource ARNs and the condition keys it is checked with (pure).
* :mod:`dockyard.iam.records` keeps key policies (and roles, sessions) in the state store.
* :mod:`dockyard.iam.authorize` is the check the AWS layer runs on every call.
"""
