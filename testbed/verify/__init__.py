"""Exhaustive isolation proof over the rules the switches hold (`testbed verify`).

headers.py: the header space as BDD variables; flowtext.py: dump-flows text ->
rules; network.py: the symbolic network (tables, links, connection tracking);
expected.py: what the slice policy allows; compare.py: leaks and false blocks
with concrete counterexamples.
"""
