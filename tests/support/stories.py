"""Articles shared by the event tests."""

from __future__ import annotations

# One eruption told three ways: the airport story misses the first report's event on
# arrival, and is close to it once the third story, which tells both, has joined it.
ERUPTION = (
    "Volcano erupts near Grindavik in Iceland",
    "A volcano erupted on the Reykjanes peninsula on Monday night, sending lava towards "
    "Grindavik. The town's 4,000 residents were evacuated, the Icelandic Met Office said.",
)
ERUPTION_AIRPORT = (
    "Keflavik flights continue as Blue Lagoon closes near Grindavik",
    "Flights at Keflavik airport continued on Tuesday. The Blue Lagoon spa closed after "
    "the eruption near Grindavik on the Reykjanes peninsula, and lava reached a road.",
)
ERUPTION_BOTH = (
    "Volcano erupts near Grindavik in Iceland, lava flows",
    "A volcano erupted on the Reykjanes peninsula on Monday night, sending lava towards "
    "Grindavik, whose 4,000 residents were evacuated, the Icelandic Met Office said. The "
    "Blue Lagoon spa closed; flights at Keflavik airport continued.",
)
