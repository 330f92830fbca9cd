"""The formats as data: table specs, the layout plan, the formula language, identities and unit lists."""
