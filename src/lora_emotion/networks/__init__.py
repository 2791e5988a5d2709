"""Network adapters: what each LoRaWAN network server POSTs, turned into the same uplinks."""
