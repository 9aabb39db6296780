"""Controller apps written for the Ryu API, as a user would bring their own (see README:
"Bring your own Ryu app"). They import `ryu.*` and run unmodified in the controller
process, where `ryu` is os-ken (controllers/ryu_alias.py)."""
