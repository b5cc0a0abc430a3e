"""Declared computed traits: ``[traits.NAME]`` of the rules file, folded per customer.

:mod:`~state.traits.kinds` (the strategies), :mod:`~state.traits.windows` (lifetime,
exact, day buckets), :mod:`~state.traits.paths` (typed field paths),
:mod:`~state.traits.state` (a customer's states, keyed by a hash of each definition),
:mod:`~state.traits.model` (the declarations), :mod:`~state.traits.plan` (which traits an
event folds).
"""
