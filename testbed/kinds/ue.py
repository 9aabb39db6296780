"""ue: a 5G terminal (doctor's tablet, nurse cart, ward terminal, payment kiosk)."""
from testbed.kinds.base import Kind

KIND = Kind("ue", "5G terminal: tablet, nurse cart, ward-round terminal, kiosk", ran_role="ue")
