namespace EdgeMta.Transport;
