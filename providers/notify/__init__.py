"""Where notifications go: the operator's sinks (apprise's many services, and Setpoint's own
signed JSON webhook). A sink sends one message and says what came back; `NotDelivered`
says whether trying again may help."""
