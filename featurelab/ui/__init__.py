"""The notebook front: the panel (an anywidget mirroring the Lab) and the comm to the
labextension that inserts the panel's actions as cells. It calls Lab verbs and holds no
logic of its own."""
