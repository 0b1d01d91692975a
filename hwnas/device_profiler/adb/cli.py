"""`hwnas devices`: attached ADB devices (serial, model, SoC, Android) and the device presets."""

from __future__ import annotations

import typer

from hwnas.device_profiler.presets import list_presets


def register(app: typer.Typer) -> None:
    """Add `hwnas devices` to the main app."""

    @app.command("devices")
    def devices(
        serial: list[str] = typer.Option(
            [], "--serial", help="Also probe this device (HOST:PORT for adb over TCP); repeatable."
        ),
        timeout: float = typer.Option(5.0, help="Seconds to wait for each device."),
    ) -> None:
        """List attached ADB devices and the device presets."""
        from .device import find_devices

        found = find_devices(serial, timeout_s=timeout)
        if not found:
            typer.echo("No ADB device attached (USB debugging on? or pass --serial HOST:PORT).")
        else:
            typer.echo(f"{'serial':<24} {'via':<4} {'state':<12} {'model':<16} {'SoC':<12} Android")
            for d in found:
                typer.echo(
                    f"{d.serial:<24} {d.via:<4} {d.state:<12} {d.model:<16} {d.soc:<12} {d.android}"
                )
        presets = list_presets()
        if presets:
            typer.echo("\nPresets:")
            for p in presets:
                typer.echo(f"  {p.name:<14} {p.description}")
