"""The Gradio face of the app: it builds requests for the engine in modules/ and shows the results."""
