"""The bundled sample news site: an offline demo target and the capture test fixture.

Everything lives in ``provenance.demo.site`` (server, request log, expected facts). This
package deliberately re-exports nothing: importing the submodule here would make
``python -m provenance.demo.site`` warn that the module was imported twice.
"""
