"""Import the Ryu app API from Ryu where it is installed, else from os-ken.

os-ken is OpenStack's maintained fork of Ryu with the same app API under another
package name; Ryu does not run on Python 3.11. Apps import from here so that one
source file works on both.
"""
try:  # pragma: no cover - depends on what is installed
    from ryu.base import app_manager
    from ryu.controller import ofp_event
    from ryu.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, DEAD_DISPATCHER, set_ev_cls
    from ryu.lib import hub
    from ryu.ofproto import ofproto_v1_3

    AppBase = app_manager.RyuApp
except ImportError:
    from os_ken.base import app_manager
    from os_ken.controller import ofp_event
    from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, DEAD_DISPATCHER, set_ev_cls
    from os_ken.lib import hub
    from os_ken.ofproto import ofproto_v1_3

    AppBase = app_manager.OSKenApp

__all__ = ["AppBase", "ofp_event", "CONFIG_DISPATCHER", "MAIN_DISPATCHER", "DEAD_DISPATCHER",
           "set_ev_cls", "ofproto_v1_3", "app_manager", "hub"]
